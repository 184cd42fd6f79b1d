// A real Prometheus (Debian's /usr/bin/prometheus) scrapes `qsl serve`'s /metrics, and a PromQL
// query over the generation-token counter returns a positive value.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, freePort, startServer } from './lib.mjs';

const PROMETHEUS = process.env.QSL_PROMETHEUS ?? '/usr/bin/prometheus';
let srv;
let prom;
let dir;
let promPort;

before(async () => {
  srv = await startServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qsl-prom-'));
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    'scrape_configs:',
    '  - job_name: qsl',
    `    static_configs: [{targets: ['127.0.0.1:${srv.port}']}]`,
  ].join('\n') + '\n');
  promPort = await freePort();
  prom = spawn(PROMETHEUS, [
    `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
  ], { stdio: 'ignore' });
});

after(async () => {
  prom?.kill('SIGTERM');
  await srv.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function query(promql) {
  const url = `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(promql)}`;
  try {
    const body = await (await fetch(url)).json();
    return body.status === 'success' ? body.data.result : [];
  } catch {
    return [];  // Prometheus still starting
  }
}

test('PromQL sees generated tokens and request counts', async () => {
  const r = await fetch(`${srv.http}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: 'Hello', max_tokens: 5 }),
  });
  assert.equal(r.status, 200);
  let value = 0;
  assert.ok(await eventually(async () => {
    const res = await query('sum(qsl_generation_tokens_total{job="qsl"})');
    value = res.length ? Number(res[0].value[1]) : 0;
    return value > 0;
  }, { timeoutMs: 45000, everyMs: 500 }), 'no qsl_generation_tokens_total sample with a positive value');
  assert.ok(value >= 5);
  const up = await query('up{job="qsl"}');
  assert.equal(up[0]?.value[1], '1');
  const ok = await query('qsl_requests_total{endpoint="/v1/completions",status="200"}');
  assert.equal(ok[0]?.value[1], '1');
});
