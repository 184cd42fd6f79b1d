// Offline checks of rendered Kubernetes objects: each against the API's schema (kubernetes-models,
// generated from the Kubernetes and Prometheus Operator OpenAPI specs), unknown fields against the
// API's field lists (@kubernetes/client-node's type maps: kubectl's strict field validation would
// reject them), and the references between objects that only a running cluster would otherwise
// catch (selectors, port names, ConfigMap keys, the flags the server accepts).
import { isDeepStrictEqual } from "node:util";

import * as k8s from "@kubernetes/client-node";

import { documentedFlagVariables, readSource, readYaml } from "./lib.mjs";

async function schemaModel(apiVersion, kind) {
  const module = apiVersion.includes(".coreos.com/")
    ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
    : `kubernetes-models/${apiVersion}/${kind}`;
  try {
    return (await import(module))[kind];
  } catch {
    return null;
  }
}

// Fields of `value` that the API type `typeName` does not have, as "path: unknown field".
function unknownFields(value, typeName, where, out) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(typeName))) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, m[1], `${where}[${i}]`, out));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(typeName))) {
    for (const [k, v] of Object.entries(value)) unknownFields(v, m[1], `${where}.${k}`, out);
    return;
  }
  const type = k8s[typeName];
  if (typeof type?.getAttributeTypeMap !== "function" || typeof value !== "object" || Array.isArray(value)) return;
  const attrs = new Map(type.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!attrs.has(k)) out.push(`${where}.${k}: unknown field of ${typeName}`);
    else unknownFields(v, attrs.get(k), `${where}.${k}`, out);
  }
}

const apiTypeName = (apiVersion, kind) => {
  const version = apiVersion.split("/").pop();
  return `${version[0].toUpperCase()}${version.slice(1)}${kind}`;
};

// Schema and unknown-field errors of one object.
export async function schemaErrors(object) {
  const id = `${object.kind}/${object.metadata?.name}`;
  const Model = await schemaModel(object.apiVersion, object.kind);
  if (!Model) return [`${id}: no schema for ${object.apiVersion} ${object.kind}`];
  const errors = [];
  try {
    new Model(object).validate();
  } catch (e) {
    errors.push(`${id}: ${e.message}`);
  }
  // Custom resources have no client-node type map; their fields get the field checks below.
  if (!object.apiVersion.includes(".coreos.com/")) unknownFields(object, apiTypeName(object.apiVersion, object.kind), id, errors);
  return errors;
}

const subset = (small = {}, big = {}) => Object.entries(small).every(([k, v]) => big[k] === v);

// The references between objects and the server contract, checked on one rendered set.
// `expect.fpga`: the set must request a card (and only then).
export function fieldErrors(objects, expect = {}) {
  const errors = [];
  const check = (ok, message) => { if (!ok) errors.push(message); };
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const named = (kind, name) => byKind(kind).find((o) => o.metadata.name === name);
  const flags = documentedFlagVariables();

  const names = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
  check(new Set(names).size === names.length, `duplicate objects: ${names.join(", ")}`);

  const deployments = byKind("Deployment");
  check(deployments.length === 1, `expected one Deployment, found ${deployments.length}`);
  const deploy = deployments[0];
  const pod = deploy.spec.template;
  const podLabels = pod.metadata.labels;
  check(subset(deploy.spec.selector.matchLabels, podLabels), "Deployment selector does not match its pod labels");
  check(pod.spec.securityContext?.runAsNonRoot === true && pod.spec.securityContext?.runAsUser !== 0, "pods must run as non-root");
  check(named("ServiceAccount", pod.spec.serviceAccountName), `ServiceAccount ${pod.spec.serviceAccountName} missing`);

  const [container] = pod.spec.containers;
  const portByName = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
  check(portByName.http && portByName.grpc, "container needs ports named http and grpc");

  // The server's configuration: the ConfigMap read through envFrom, plus env.
  const env = {};
  for (const from of container.envFrom ?? []) {
    const cm = named("ConfigMap", from.configMapRef?.name);
    check(cm, `envFrom ConfigMap ${from.configMapRef?.name} missing`);
    Object.assign(env, cm?.data ?? {});
  }
  for (const e of container.env ?? []) {
    env[e.name] = e.value ?? "(from a reference)";
    const secret = e.valueFrom?.secretKeyRef;
    if (secret) {
      const s = named("Secret", secret.name);
      check(s && secret.key in (s.data ?? s.stringData ?? {}), `env ${e.name}: Secret ${secret.name} with key ${secret.key} missing`);
    }
  }
  for (const name of Object.keys(env)) check(flags.has(name), `${name} is not a documented qsl flag (docs/metrics.md)`);
  check(Number(env.QSL_PORT) === portByName.http, `QSL_PORT ${env.QSL_PORT} differs from container port http ${portByName.http}`);
  check(Number(env.QSL_GRPC_PORT) === portByName.grpc, `QSL_GRPC_PORT ${env.QSL_GRPC_PORT} differs from container port grpc ${portByName.grpc}`);
  check(env.QSL_HOST === "0.0.0.0", "QSL_HOST must be 0.0.0.0 in a pod");
  check(env.QSL_MODEL?.startsWith("/"), "QSL_MODEL must be an absolute path in the image or a volume");

  // Probes on the server's health endpoints: gRPC health and HTTP /health, /ready.
  check(container.startupProbe?.grpc?.port === portByName.grpc, "startupProbe must ask gRPC health on the grpc port");
  check(container.livenessProbe?.httpGet?.path === "/health" && container.livenessProbe.httpGet.port === "http", "livenessProbe must GET /health on port http");
  check(container.readinessProbe?.httpGet?.path === "/ready" && container.readinessProbe.httpGet.port === "http", "readinessProbe must GET /ready on port http");

  // Volumes: every mount has a volume, every ConfigMap volume a ConfigMap, the MpeConfig a key.
  const volumes = Object.fromEntries((pod.spec.volumes ?? []).map((v) => [v.name, v]));
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes[mount.name];
    check(volume, `volumeMount ${mount.name} has no volume`);
    if (volume?.configMap) check(named("ConfigMap", volume.configMap.name), `volume ${mount.name}: ConfigMap ${volume.configMap.name} missing`);
  }
  if (env.QSL_MPE_CONFIG) {
    const mount = (container.volumeMounts ?? []).find((m) => env.QSL_MPE_CONFIG.startsWith(`${m.mountPath}/`));
    const cm = mount && named("ConfigMap", volumes[mount.name]?.configMap?.name);
    const key = mount && env.QSL_MPE_CONFIG.slice(mount.mountPath.length + 1);
    check(cm?.data?.[key], `QSL_MPE_CONFIG ${env.QSL_MPE_CONFIG} is not a key of a mounted ConfigMap`);
    if (cm?.data?.[key]) check(isDeepStrictEqual(Object.keys(JSON.parse(cm.data[key])), Object.keys(JSON.parse(readSource("deploy/k8s/base/mpe-config.json")))), "MpeConfig fields differ from deploy/k8s/base/mpe-config.json");
  }

  // Cards: the device plugin's resource in limits exactly when real cards are expected.
  const limits = container.resources?.limits ?? {};
  const cardResources = Object.keys(limits).filter((r) => r.includes("/"));
  check(expect.fpga ? cardResources.length === 1 : cardResources.length === 0, `card resources ${JSON.stringify(cardResources)} (expected ${expect.fpga ? "one" : "none"})`);
  check(expect.fpga ? env.QSL_DEVICES?.startsWith("xrt:") : !env.QSL_DEVICES?.startsWith("xrt:"), `QSL_DEVICES ${env.QSL_DEVICES} does not match the card request`);
  if (expect.fpga) {
    check(pod.spec.tolerations?.some((t) => t.key === cardResources[0]), "card pods must tolerate the card nodes' taint");
    check(Object.keys(pod.spec.nodeSelector ?? {}).length > 0, "card pods need a node selector");
  }

  // Services select the pods and target named container ports.
  const services = byKind("Service");
  for (const svc of services) {
    check(subset(svc.spec.selector, podLabels), `Service ${svc.metadata.name} selects no qsl pod`);
    for (const p of svc.spec.ports) check(p.targetPort in portByName, `Service ${svc.metadata.name} port ${p.name} targets unknown port ${p.targetPort}`);
  }
  const main = services.find((s) => s.spec.clusterIP !== "None");
  check(main && ["http", "grpc", "metrics"].every((n) => main.spec.ports.some((p) => p.name === n)), "the Service needs ports http, grpc and metrics");

  for (const hpa of byKind("HorizontalPodAutoscaler")) {
    const ref = hpa.spec.scaleTargetRef;
    check(ref.kind === "Deployment" && ref.name === deploy.metadata.name, `HPA scales ${ref.kind}/${ref.name}, not the Deployment`);
    check(deploy.spec.replicas === undefined, "with an HPA the Deployment must leave replicas to it");
    check(hpa.spec.minReplicas <= hpa.spec.maxReplicas, "HPA minReplicas > maxReplicas");
  }
  for (const pdb of byKind("PodDisruptionBudget")) check(subset(pdb.spec.selector.matchLabels, podLabels), "PodDisruptionBudget selects no qsl pod");

  // The operator scrapes every selected Service that has the endpoint's port: exactly one may,
  // or each pod would be scraped twice.
  for (const sm of byKind("ServiceMonitor")) {
    const selected = services.filter((s) => subset(sm.spec.selector.matchLabels, s.metadata.labels));
    for (const ep of sm.spec.endpoints) {
      const scraped = selected.filter((s) => s.spec.ports.some((p) => p.name === ep.port));
      check(scraped.length === 1, `ServiceMonitor port ${ep.port} is on ${scraped.length} selected Services, not 1`);
      check(ep.path === "/metrics", "ServiceMonitor must scrape /metrics");
      check(scraped[0]?.metadata.labels?.[sm.spec.jobLabel] === "qsl", "ServiceMonitor jobLabel must give job=\"qsl\" (the rules' job)");
    }
  }
  const rules = readYaml("deploy/prometheus/rules.yaml");
  for (const pr of byKind("PrometheusRule")) check(isDeepStrictEqual(pr.spec, rules), "PrometheusRule differs from deploy/prometheus/rules.yaml");

  for (const cm of byKind("ConfigMap").filter((c) => c.data?.["qsl.json"])) {
    check(isDeepStrictEqual(JSON.parse(cm.data["qsl.json"]), JSON.parse(readSource("deploy/grafana/qsl.json"))), "dashboard ConfigMap differs from deploy/grafana/qsl.json");
  }
  return errors;
}

export async function allErrors(objects, expect) {
  const errors = [];
  for (const o of objects) errors.push(...(await schemaErrors(o)));
  return [...errors, ...fieldErrors(objects, expect)];
}
