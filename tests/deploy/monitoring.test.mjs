// Offline checks of the Prometheus rules, the Grafana dashboard, the prometheus-adapter config and
// the HPA against the metric contract of docs/metrics.md (the live server check is
// metrics_live.test.mjs). Run by CTest (deploy.monitoring).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { parser as promqlParser } from "@prometheus-io/lezer-promql";
import YAML from "yaml";

import {
  deployExpressions, documentedMetrics, hpaMetricNames, metricUses, promqlMetricNames, readSource,
  readYaml, renderHelm, renderKustomize, run, seriesOf,
} from "./lib.mjs";

const dashboard = JSON.parse(readSource("deploy/grafana/qsl.json"));
const hpaNames = [
  ...hpaMetricNames(renderKustomize("deploy/k8s")),
  ...hpaMetricNames(renderHelm()),
];

test("every metric the rules, dashboard, adapter and HPA read is in docs/metrics.md", () => {
  const exported = new Set();
  for (const [name, type] of documentedMetrics()) for (const s of seriesOf(name, type)) exported.add(s);
  const unknown = [...metricUses(hpaNames)].filter(([name]) => !exported.has(name));
  assert.deepEqual(unknown, [], "metrics qsl does not export (name, where used)");
});

test("Prometheus accepts every dashboard query (promtool check rules)", () => {
  // promtool parses and type-checks PromQL only inside rule files: wrap each query in one.
  const rules = deployExpressions().map(({ expr }, i) => ({ record: `qsl_check:expr${i}`, expr }));
  const dir = mkdtempSync(path.join(os.tmpdir(), "qsl-promql-"));
  try {
    const file = path.join(dir, "queries.yaml");
    writeFileSync(file, YAML.stringify({ groups: [{ name: "queries", rules }] }));
    run("promtool", ["check", "rules", file]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

// Counters are only meaningful through rate(), irate() or increase().
test("counters are read through rate, irate or increase", () => {
  const counters = new Set([...documentedMetrics()].filter(([, t]) => t === "counter").map(([n]) => n));
  const misuse = [];
  for (const { where, expr } of deployExpressions()) {
    promqlParser.parse(expr).iterate({
      enter(node) {
        if (node.name !== "VectorSelector") return;
        const ident = node.node.getChild("Identifier");
        const name = ident && expr.slice(ident.from, ident.to);
        if (!counters.has(name)) return;
        const call = node.node.parent?.name === "MatrixSelector" ? node.node.parent.parent?.parent : null;
        const fn = call?.name === "FunctionCall" ? call.getChild("FunctionIdentifier") : null;
        if (!fn || !["rate", "irate", "increase"].includes(expr.slice(fn.from, fn.to))) misuse.push(`${where}: ${name}`);
      },
    });
  }
  assert.deepEqual(misuse, []);
});

test("the dashboard covers what the issue asks for", () => {
  const used = new Set(deployExpressions()
    .filter(({ where }) => where.startsWith("dashboard panel"))
    .flatMap(({ expr }) => [...promqlMetricNames(expr)]));
  for (const metric of [
    "qsl_requests_total", "qsl_generation_tokens_total", "qsl_time_to_first_token_seconds_bucket",
    "qsl_time_per_output_token_seconds_bucket", "qsl_requests_waiting", "qsl_kv_cache_usage_ratio",
    "qsl_prefix_cache_hits_total", "qsl_card_utilization_ratio", "qsl_card_up",
  ]) assert.ok(used.has(metric), `no dashboard panel shows ${metric}`);
});

test("dashboard is a well-formed Grafana dashboard", () => {
  assert.ok(dashboard.uid && dashboard.title && Number.isInteger(dashboard.schemaVersion));
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids repeat");
  const variables = new Set(dashboard.templating.list.map((v) => v.name));
  assert.ok(variables.has("datasource"), "no datasource variable");
  for (const panel of dashboard.panels) {
    const { x, w, h } = panel.gridPos;
    assert.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `panel "${panel.title}" is outside the 24-column grid`);
    if (panel.type === "row") continue;
    assert.ok(panel.targets?.length, `panel "${panel.title}" has no query`);
    for (const t of panel.targets) {
      assert.equal(t.datasource.uid, "${datasource}", `panel "${panel.title}" ignores the datasource variable`);
      for (const m of t.expr.matchAll(/\$\{?(\w+)\}?/g)) {
        assert.ok(m[1].startsWith("__") || variables.has(m[1]), `panel "${panel.title}" uses undefined variable $${m[1]}`);
      }
    }
  }
});

test("alerts cover error rate, TTFT p99, queue growth and card down, with severity and text", () => {
  const alerts = readYaml("deploy/prometheus/rules.yaml").groups.flatMap((g) => g.rules).filter((r) => r.alert);
  const names = alerts.map((a) => a.alert);
  for (const name of ["QslHighErrorRate", "QslTimeToFirstTokenP99High", "QslQueueGrowing", "QslCardDown"]) {
    assert.ok(names.includes(name), `no ${name} alert`);
  }
  for (const a of alerts) {
    assert.ok(["critical", "warning"].includes(a.labels?.severity), `${a.alert}: severity`);
    assert.ok(a.annotations?.summary && a.annotations?.description, `${a.alert}: summary and description`);
  }
});

test("the HPA scales on a metric the prometheus-adapter config serves", () => {
  const served = new Set(readYaml("deploy/prometheus/adapter.yaml").rules.map((r) => r.name.as));
  assert.ok(hpaNames.length > 0, "no HPA metric rendered");
  for (const name of hpaNames) assert.ok(served.has(name), `${name} is not served by adapter.yaml`);
  assert.equal(documentedMetrics().get("qsl_requests_waiting"), "gauge");
});
