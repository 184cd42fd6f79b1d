// The kustomize base and the Helm chart render, every rendered object passes the schema and field
// checks of objects.mjs, both ship the same objects, and the chart's values schema holds.
// Run by CTest (deploy.manifests); QSL_HELM_RENDER names the renderer built by the fixture.
import assert from "node:assert/strict";
import { test } from "node:test";

import Ajv from "ajv";

import { readSource, readYaml, renderHelm, renderKustomize, run } from "./lib.mjs";
import { allErrors, fieldErrors } from "./objects.mjs";

const OPERATOR = ["monitoring.coreos.com/v1"];

async function assertValid(objects, expect = {}) {
  assert.ok(objects.length > 0, "nothing rendered");
  assert.deepEqual(await allErrors(objects, expect), []);
}

const kinds = (objects) => objects.map((o) => o.kind).sort();

// Values files merge into the chart's values map by map, as Helm coalesces them.
const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
function coalesce(defaults, user) {
  const out = { ...defaults };
  for (const [k, v] of Object.entries(user)) out[k] = isMap(v) && isMap(out[k]) ? coalesce(out[k], v) : v;
  return out;
}

test("kubectl kustomize deploy/k8s renders valid objects", async () => {
  await assertValid(renderKustomize("deploy/k8s"));
});

test("deploy/k8s/base alone has no Prometheus Operator objects", async () => {
  const objects = renderKustomize("deploy/k8s/base");
  await assertValid(objects);
  assert.ok(!objects.some((o) => o.apiVersion.startsWith("monitoring.coreos.com/")));
});

test("deploy/k8s/overlays/fpga renders valid objects that ask for a card", async () => {
  await assertValid(renderKustomize("deploy/k8s/overlays/fpga"), { fpga: true });
});

test("deploy/k8s/overlays/api-key with its Secret renders valid objects", async () => {
  const objects = renderKustomize("tests/deploy/k8s-api-key");
  await assertValid(objects);
  assert.ok(objects.every((o) => o.metadata.namespace === "qsl-test"));
  const env = objects.find((o) => o.kind === "Deployment").spec.template.spec.containers[0].env;
  assert.ok(env.some((e) => e.name === "QSL_API_KEY" && e.valueFrom.secretKeyRef.name.startsWith("qsl-api-key")));
});

test("helm chart with default values renders valid objects", async () => {
  await assertValid(renderHelm({ apiVersions: OPERATOR }));
});

test("helm chart without the Prometheus Operator API leaves its objects out", async () => {
  const objects = renderHelm();
  await assertValid(objects);
  assert.ok(!objects.some((o) => o.apiVersion.startsWith("monitoring.coreos.com/")));
  assert.match(renderHelm({ notes: true }), /does not serve monitoring\.coreos\.com\/v1/);
});

test("helm chart with every option on renders valid objects", async () => {
  const objects = renderHelm({ values: ["tests/deploy/helm-values-all.yaml"], apiVersions: OPERATOR });
  await assertValid(objects, { fpga: true });
  const present = new Set(kinds(objects));
  for (const kind of ["Secret", "ServiceMonitor", "PrometheusRule"]) assert.ok(present.has(kind), `${kind} not rendered`);
  assert.ok(!present.has("HorizontalPodAutoscaler"), "autoscaling.enabled=false still renders an HPA");
  const deploy = objects.find((o) => o.kind === "Deployment");
  assert.equal(deploy.spec.replicas, 2);
  const flags = objects.find((o) => o.kind === "ConfigMap" && o.data?.QSL_MODEL).data;
  assert.equal(flags.QSL_MAX_NUM_SEQS, "128", "server.extraEnv must win over the chart's flag");
});

test("helm and kustomize ship the same objects", () => {
  const helm = renderHelm({ apiVersions: OPERATOR });
  const kustomize = renderKustomize("deploy/k8s");
  assert.deepEqual(kinds(helm), kinds(kustomize));
});

test("helm NOTES.txt renders for default and full values", () => {
  assert.match(renderHelm({ notes: true }), /kubectl -n qsl port-forward service\/qsl 8000:8000 50051:50051/);
  assert.match(renderHelm({ notes: true, values: ["tests/deploy/helm-values-all.yaml"] }), /Authorization: Bearer/);
});

test("values.yaml and the test values satisfy values.schema.json; typos do not", () => {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  const validate = ajv.compile(JSON.parse(readSource("deploy/helm/qsl/values.schema.json")));
  const values = readYaml("deploy/helm/qsl/values.yaml");
  assert.ok(validate(values), JSON.stringify(validate.errors));
  assert.ok(validate(coalesce(values, readYaml("tests/deploy/helm-values-all.yaml"))), JSON.stringify(validate.errors));
  assert.ok(!validate({ ...values, autoscalling: { enabled: false } }), "unknown top-level key accepted");
  assert.ok(!validate({ ...values, server: { ...values.server, devices: "gpu:0" } }), "bad devices accepted");
  assert.ok(!validate({ ...values, server: { ...values.server, extraEnv: { PORT: "1" } } }), "extraEnv without QSL_ accepted");
});

test("field checks catch a broken reference", () => {
  // The checks themselves: a Service that targets a port the container does not have.
  const objects = renderKustomize("deploy/k8s/base");
  const svc = objects.find((o) => o.kind === "Service");
  svc.spec.ports[0].targetPort = "htp";
  assert.ok(fieldErrors(objects).some((e) => e.includes("targets unknown port htp")));
});

test("generated copies are up to date (deploy/generate.sh --check)", () => {
  run("deploy/generate.sh", ["--check"]);
});
