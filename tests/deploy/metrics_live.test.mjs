// Starts a real `qsl serve` configured the way the pods are (the kustomize base's flags.env and
// MpeConfig, with the bundled model and the simulated card), then checks what the deploy files
// rely on: /health, /ready, gRPC health (the probes), a completion, every metric name the rules,
// dashboard, adapter and HPAs read in its /metrics with the documented type, every QSL_ variable
// the deploy files set in its --help, and a clean exit on SIGTERM (the pods' preStop/drain).
// The model is the bundled one quantized by `qsl quantize` (the CTest fixture server_model), as
// the image does at build time. Run by CTest (deploy.metrics_live).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";

import * as grpc from "@grpc/grpc-js";

import {
  BIN, documentedMetrics, hpaMetricNames, metricUses, parseEnvFile, readSource, renderHelm,
  renderKustomize, src,
} from "./lib.mjs";

const QSL = process.env.QSL_BINARY ?? path.join(BIN, "tools/qsl");

const mainHelp = spawnSync(QSL, ["--help"], { encoding: "utf8" });
const serveHelp = spawnSync(QSL, ["serve", "--help"], { encoding: "utf8" });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let server;
let log = "";
let exited = null;
let base;
let grpcPort;
const flags = parseEnvFile(readSource("deploy/k8s/base/flags.env"));

before(async () => {
  const [httpPort, gport] = [await freePort(), await freePort()];
  grpcPort = gport;
  base = `http://127.0.0.1:${httpPort}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("QSL_")));
  Object.assign(env, flags, {
    QSL_MODEL: process.env.QSL_TEST_MODEL ?? path.join(BIN, "tests/qsl-tiny-llama-w4a8.qsl"),
    QSL_MPE_CONFIG: src("deploy/k8s/base/mpe-config.json"),
    QSL_HOST: "127.0.0.1",
    QSL_PORT: String(httpPort),
    QSL_GRPC_PORT: String(grpcPort),
  });
  // No flags: the server is configured by environment alone, as in the image and the pods.
  server = spawn(QSL, ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout.on("data", (d) => { log += d; });
  server.stderr.on("data", (d) => { log += d; });
  server.on("exit", (code, signal) => { exited = { code, signal }; });
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`qsl serve exited ${JSON.stringify(exited)} before ready:\n${log.slice(-4000)}`);
    try {
      if ((await fetch(`${base}/ready`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`qsl serve not ready after 120 s:\n${log.slice(-4000)}`);
});

after(() => {
  if (server && !exited) server.kill("SIGKILL");
});

test("liveness: GET /health answers 200", async () => {
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

test("startup probe: grpc.health.v1 reports SERVING", async () => {
  const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
  try {
    // HealthCheckRequest{service: ""} encodes to no bytes; SERVING is field 1 = 1: 08 01.
    const reply = await new Promise((resolve, reject) => {
      client.makeUnaryRequest("/grpc.health.v1.Health/Check", () => Buffer.alloc(0), (b) => b, {},
        { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res)));
    });
    assert.deepEqual([...reply], [0x08, 0x01]);
  } finally {
    client.close();
  }
});

test("a completion succeeds (so per-request series exist)", async () => {
  const r = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: flags.QSL_SERVED_MODEL_NAME, prompt: "The module", max_tokens: 4 }),
  });
  assert.equal(r.status, 200, await r.text());
});

test("every metric the deploy files read is exported with the documented type", async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  const samples = new Set([...text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)].map((m) => m[1]));
  const documented = documentedMetrics();
  const hpa = [...hpaMetricNames(renderKustomize("deploy/k8s")), ...hpaMetricNames(renderHelm())];
  const problems = [];
  for (const [name, where] of metricUses(hpa)) {
    const histogram = name.match(/^(.+)_(bucket|sum|count)$/);
    const family = histogram && types.get(histogram[1]) === "histogram" ? histogram[1] : name;
    if (!types.has(family) && !samples.has(name)) problems.push(`${name} (used by ${where.join(", ")}) is not in /metrics`);
    else if (documented.has(family) && types.get(family) !== documented.get(family)) problems.push(`${family} is a ${types.get(family)}, docs/metrics.md says ${documented.get(family)}`);
  }
  assert.deepEqual(problems, []);
});

test("qsl --help lists every QSL_ variable the deploy files set", () => {
  const help = serveHelp.stdout + mainHelp.stdout;
  const used = new Set(Object.keys(flags));
  for (const o of [...renderHelm({ values: ["tests/deploy/helm-values-all.yaml"] }), ...renderKustomize("deploy/k8s/overlays/fpga"), ...renderKustomize("tests/deploy/k8s-api-key")]) {
    if (o.kind === "ConfigMap") for (const k of Object.keys(o.data ?? {})) if (k.startsWith("QSL_")) used.add(k);
    if (o.kind === "Deployment") for (const e of o.spec.template.spec.containers[0].env ?? []) used.add(e.name);
  }
  for (const m of readSource("docker/Dockerfile").matchAll(/^\s*(?:ENV )?(QSL_[A-Z0-9_]+)=/gm)) used.add(m[1]);
  assert.deepEqual([...used].filter((v) => !help.includes(v)), []);
});

test("SIGTERM drains and exits 0", async () => {
  server.kill("SIGTERM");
  const deadline = Date.now() + 30_000;
  while (!exited && Date.now() < deadline) await sleep(100);
  assert.deepEqual(exited, { code: 0, signal: null }, log.slice(-2000));
});
