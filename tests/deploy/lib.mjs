// Shared pieces of the deploy tests: paths, running tools, YAML and PromQL parsing, the
// contracts of docs/metrics.md, and what the deploy files say about metrics and flags.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { parser as promqlParser } from "@prometheus-io/lezer-promql";
import YAML from "yaml";

export const SRC = process.env.QSL_SOURCE_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = process.env.QSL_BINARY_DIR ?? path.join(SRC, "build");
export const src = (...parts) => path.join(SRC, ...parts);
export const readSource = (...parts) => readFileSync(src(...parts), "utf8");

// Runs a tool and returns its stdout; a non-zero exit throws with the tool's stderr.
export function run(command, args, options = {}) {
  const r = spawnSync(command, args, { cwd: SRC, encoding: "utf8", maxBuffer: 64 << 20, ...options });
  if (r.error) throw new Error(`${command}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

// Every document of a YAML stream; duplicate keys and syntax errors throw.
export function parseYamlDocs(text, where) {
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true });
  const out = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${where}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

export const readYaml = (...parts) => parseYamlDocs(readSource(...parts), parts.join("/"))[0];

export function renderKustomize(dir) {
  return parseYamlDocs(run("kubectl", ["kustomize", dir]), `kubectl kustomize ${dir}`);
}

export function renderHelm({ values = [], apiVersions = [], release = "qsl", namespace = "qsl", notes = false } = {}) {
  const renderer = process.env.QSL_HELM_RENDER ?? path.join(BIN, "tests/deploy/helm_render");
  if (!existsSync(renderer)) throw new Error(`${renderer} missing: it is built by the CTest fixture deploy.helm_render_build`);
  const args = ["--chart", src("deploy/helm/qsl"), "--release", release, "--namespace", namespace];
  for (const v of values) args.push("--values", src(v));
  for (const a of apiVersions) args.push("--api-versions", a);
  if (notes) return run(renderer, [...args, "--notes"]);
  return parseYamlDocs(run(renderer, args), "helm_render");
}

// `qsl serve` flags as their QSL_<FLAG> variables: the usage line of docs/metrics.md, plus the
// options of the `qsl` command itself that tools/qsl/main.cc binds to a variable.
export function documentedFlagVariables() {
  const doc = readSource("docs/metrics.md");
  const usage = doc.match(/`qsl serve ([^`]+)`/);
  if (!usage) throw new Error("docs/metrics.md: no `qsl serve ...` usage line");
  const vars = new Set([...usage[1].matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => flagVariable(m[1])));
  for (const m of readSource("tools/qsl/main.cc").matchAll(/envname\("(QSL_[A-Z0-9_]+)"\)/g)) vars.add(m[1]);
  return vars;
}

export const flagVariable = (flag) => `QSL_${flag.toUpperCase().replaceAll("-", "_")}`;

// docs/metrics.md's table: metric name -> type.
export function documentedMetrics() {
  const metrics = new Map();
  for (const m of readSource("docs/metrics.md").matchAll(/^\| `(qsl_[a-z0-9_]+)` \| (counter|gauge|histogram) \|/gm)) {
    metrics.set(m[1], m[2]);
  }
  if (metrics.size === 0) throw new Error("docs/metrics.md: no metrics table");
  return metrics;
}

// The series names a metric family exposes in the text format.
export function seriesOf(name, type) {
  return type === "histogram" ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
}

// Metric names selected by a PromQL expression (vector selectors and {__name__="..."}).
export function promqlMetricNames(expr) {
  const tree = promqlParser.parse(expr);
  const names = new Set();
  let error = null;
  tree.iterate({
    enter(node) {
      if (node.type.isError && error === null) error = `syntax error at ${node.from}: ${JSON.stringify(expr.slice(node.from, node.from + 30))}`;
      if (node.name === "VectorSelector") {
        const ident = node.node.getChild("Identifier");
        if (ident) names.add(expr.slice(ident.from, ident.to));
      }
      if (node.name === "UnquotedLabelMatcher" || node.name === "QuotedLabelMatcher") {
        const label = node.node.getChild("LabelName");
        const value = node.node.getChild("StringLiteral");
        if (label && value && expr.slice(label.from, label.to) === "__name__") names.add(JSON.parse(expr.slice(value.from, value.to)));
      }
    },
  });
  if (error) throw new Error(`${error} in ${expr}`);
  return names;
}

// Grafana expands its variables before Prometheus sees a query; do the same with fixed values.
export function expandGrafanaVariables(expr) {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, "5m")
    .replace(/\$\{\w+(:\w+)?\}|\$\w+/g, "x");
}

// Every PromQL expression the deploy files hand to Prometheus, Grafana or prometheus-adapter,
// with where it comes from; `label_values(expr, label)` template queries count by their expr.
export function deployExpressions() {
  const out = [];
  const rules = readYaml("deploy/prometheus/rules.yaml");
  for (const group of rules.groups) {
    for (const rule of group.rules) out.push({ where: `rules.yaml ${rule.record ?? rule.alert}`, expr: rule.expr });
  }
  const dashboard = JSON.parse(readSource("deploy/grafana/qsl.json"));
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) out.push({ where: `dashboard panel "${panel.title}"`, expr: expandGrafanaVariables(target.expr) });
  }
  for (const variable of dashboard.templating.list) {
    const q = variable.query?.query ?? (typeof variable.query === "string" ? variable.query : null);
    const m = q?.match(/^label_values\((.+),\s*\w+\)$/);
    if (variable.type === "query") {
      if (!m) throw new Error(`dashboard variable ${variable.name}: expected label_values(expr, label), got ${q}`);
      out.push({ where: `dashboard variable ${variable.name}`, expr: expandGrafanaVariables(m[1]) });
    }
  }
  for (const rule of readYaml("deploy/prometheus/adapter.yaml").rules) {
    out.push({ where: "adapter.yaml seriesQuery", expr: rule.seriesQuery });
  }
  return out;
}

// Names defined by the recording rules (usable in other rules, not exported by qsl).
export function recordedNames() {
  return new Set(readYaml("deploy/prometheus/rules.yaml").groups.flatMap((g) => g.rules.filter((r) => r.record).map((r) => r.record)));
}

// `up` is written by Prometheus for every scrape target; it is how QslDown sees a dead server.
export const PROMETHEUS_SERIES = new Set(["up"]);

// Custom metrics the HPAs of the rendered manifests scale on.
export function hpaMetricNames(objects) {
  return objects
    .filter((o) => o.kind === "HorizontalPodAutoscaler")
    .flatMap((o) => o.spec.metrics.map((m) => m.pods?.metric?.name ?? m.object?.metric?.name ?? m.external?.metric?.name).filter(Boolean));
}

// Every metric name the rules, dashboard, adapter and the given HPAs read from qsl, mapped to
// the places that read it.
export function metricUses(hpaNames) {
  const recorded = recordedNames();
  const uses = new Map();
  const add = (name, where) => {
    if (recorded.has(name) || PROMETHEUS_SERIES.has(name)) return;
    if (!uses.has(name)) uses.set(name, []);
    uses.get(name).push(where);
  };
  for (const { where, expr } of deployExpressions()) for (const name of promqlMetricNames(expr)) add(name, where);
  for (const name of hpaNames) add(name, "HorizontalPodAutoscaler");
  return uses;
}

// Parses KEY=VALUE lines (kustomize `envs` files), skipping comments and blank lines.
export function parseEnvFile(text) {
  const env = {};
  for (const line of text.split("\n")) {
    if (!line.trim() || line.trimStart().startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 1) throw new Error(`env file line without KEY=: ${line}`);
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}
