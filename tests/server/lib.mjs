// Shared by the integration tests: start the real `qsl serve` on free loopback ports, talk raw
// HTTP, poll /metrics. Environment: QSL_BIN (the qsl binary), QSL_SOURCE_DIR, and optionally
// QSL_TEST_MODEL / QSL_TEST_DEVICES to serve something other than the bundled model.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

// The npm clients live in tests/clients (package.json + lock); load them from there.
export const requireClient = createRequire(new URL('../clients/package.json', import.meta.url));

export const SOURCE_DIR = process.env.QSL_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const BIN = process.env.QSL_BIN ?? path.join(SOURCE_DIR, 'build/tools/qsl');

// Starts `qsl serve` with `args` added; resolves once it prints its listening line.
export async function startServer(args = [], { timeoutMs = 60000 } = {}) {
  const model = process.env.QSL_TEST_MODEL ?? path.join(SOURCE_DIR, 'build/tests/qsl-tiny-llama-w4a8.qsl');
  const devices = process.env.QSL_TEST_DEVICES ?? 'sim:1';
  const proc = spawn(BIN, ['serve', '--model', model, '--devices', devices, '--host', '127.0.0.1',
                           '--port', '0', '--grpc-port', '0', '--kv-cache-mb', '64', ...args],
                     { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const line = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`qsl serve did not start:\n${stderr}`)), timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening http=([\d.]+):(\d+) grpc=([\d.]+):(\d+) model=(\S+)/);
      if (m) { clearTimeout(timer); resolve(m); }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`qsl serve exited ${code}:\n${stderr}`)); });
  });
  const [, host, port, grpcHost, grpcPort, name] = line;
  return {
    proc, model: name, port: Number(port),
    http: `http://${host}:${port}`, grpc: `${grpcHost}:${grpcPort}`,
    stderr: () => stderr,
    exited,
    // SIGTERM, then the exit status.
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

// Sends `bytes` on a fresh connection, optionally in pieces with pauses; resolves with what came
// back: the status (if any), the raw response text and whether the server closed the connection.
export function rawExchange(port, pieces, { pauseMs = 0, timeoutMs = 10000, endAfter = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let closedByServer = false;
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      const text = data.toString('latin1');
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      resolve({ status: m ? Number(m[1]) : null, text, closedByServer });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d) => { data = Buffer.concat([data, d]); });
    sock.on('end', () => { closedByServer = true; finish(); });
    sock.on('error', () => { closedByServer = true; finish(); });
    sock.on('connect', async () => {
      for (const p of [pieces].flat()) {
        if (sock.destroyed) return;
        sock.write(p);
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      }
      if (endAfter) sock.end();
    });
  });
}

export function httpRequest(method, target, body, headers = {}) {
  const b = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const head = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close',
                `Content-Length: ${b.length}`,
                ...Object.entries({ 'Content-Type': 'application/json', ...headers }).map(([k, v]) => `${k}: ${v}`)];
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n'), b]);
}

// The value of one sample in the Prometheus text at `url`/metrics (NaN when absent).
export async function metric(url, sample) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line ? Number(line.slice(sample.length + 1)) : NaN;
}

export async function eventually(check, { timeoutMs = 10000, everyMs = 50 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// A free loopback port (for tools that cannot be told to pick one).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
