// A bad-input corpus against the live server: every case gets the right status (or a closed
// connection, for partial requests) and the server keeps serving. Also SIGTERM: in-flight work
// finishes, then the process exits 0.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, httpRequest, metric, rawExchange, startServer } from './lib.mjs';

let srv;

before(async () => {
  srv = await startServer(['--read-timeout', '1', '--idle-timeout', '2', '--max-body-bytes', '1048576']);
});
after(async () => {
  if (srv.proc.exitCode === null) await srv.stop();
});

const completion = (body, headers) => httpRequest('POST', '/v1/completions', body, headers);
const json = (obj) => JSON.stringify(obj);

const CASES = [
  ['malformed JSON', completion('{"prompt": "x",'), 400],
  ['not an object', completion('[1,2,3]'), 400],
  ['empty body', completion(''), 400],
  ['prompt of wrong type', completion(json({ prompt: 42 })), 400],
  ['max_tokens as string', completion(json({ prompt: 'x', max_tokens: '5' })), 400],
  ['negative max_tokens', completion(json({ prompt: 'x', max_tokens: -1 })), 400],
  ['huge max_tokens', completion('{"prompt": "x", "max_tokens": 99999999999999999999999999}'), 400],
  ['number overflow', completion('{"prompt": "x", "temperature": 1e999}'), 400],
  ['huge n', completion(json({ prompt: 'x', n: 1e9 })), 400],
  ['NaN literal', completion('{"prompt": "x", "temperature": NaN}'), 400],
  ['deep nesting', completion('{"prompt": ' + '['.repeat(100000) + ']'.repeat(100000) + '}'), 400],
  ['invalid UTF-8', completion(Buffer.concat([Buffer.from('{"prompt": "'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])), 400],
  ['token id outside vocabulary', completion(json({ prompt: [1, 2147483647] })), 400],
  ['too many stop strings', completion(json({ prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] })), 400],
  ['unknown fields are ignored', completion(json({ prompt: 'x', max_tokens: 1, frobnicate: { a: 1 } })), 200],
  ['unknown model', completion(json({ model: 'gpt-4', prompt: 'x' })), 404],
  ['unknown route', httpRequest('GET', '/v2/everything'), 404],
  ['wrong method', httpRequest('DELETE', '/v1/completions'), 405],
  ['10 MB body', completion(Buffer.alloc(10 << 20, 0x61)), 413],
  ['oversized header', httpRequest('GET', '/health', undefined, { 'X-Pad': 'a'.repeat(64 << 10) }), 431],
  ['garbage request line', Buffer.from('HELLO\r\n\r\n'), 400],
  ['bad chunked encoding', Buffer.from('POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), 400],
];

async function stillServing() {
  const r = await rawExchange(srv.port, httpRequest('GET', '/health'));
  assert.equal(r.status, 200, 'the server stopped answering /health');
}

for (const [name, bytes, status] of CASES) {
  test(`${name} -> ${status}`, async () => {
    const r = await rawExchange(srv.port, bytes);
    assert.equal(r.status, status, r.text.slice(0, 300));
    if (status >= 400) {
      const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
      assert.equal(typeof body.error.message, 'string');
      assert.ok('param' in body.error && 'code' in body.error && 'type' in body.error);
    }
    await stillServing();
  });
}

test('slowloris: a header that never ends is cut off', async () => {
  const r = await rawExchange(srv.port, ['POST /v1/completions HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: 1\r\n',
                                         'X-B: 2\r\n', 'X-C: 3\r\n'], { pauseMs: 400, timeoutMs: 8000 });
  assert.ok(r.closedByServer, 'the server kept a dripping header open');
  await stillServing();
});

test('a body that stops short is cut off', async () => {
  const r = await rawExchange(srv.port, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"pro',
                              { timeoutMs: 8000 });
  assert.ok(r.closedByServer);
  await stillServing();
});

test('abrupt disconnects cancel their requests and leave the server serving', async () => {
  const cancelled = 'qsl_request_finished_total{finish_reason="cancelled"}';
  const before = await metric(srv.http, cancelled);
  const long = { prompt: 'Tell', max_tokens: 900, ignore_eos: true };
  await rawExchange(srv.port, completion(json({ prompt: 'x', max_tokens: 50 })).subarray(0, 40), { timeoutMs: 50 });
  await rawExchange(srv.port, completion(json({ ...long, stream: true })), { timeoutMs: 300 });
  await rawExchange(srv.port, completion(json(long)), { timeoutMs: 100 });
  // Both generations were cut short by their clients and nothing is left running.
  assert.ok(await eventually(async () => (await metric(srv.http, cancelled)) >= before + 2 &&
                                         (await metric(srv.http, 'qsl_requests_running')) === 0),
            'disconnected requests were not cancelled');
  await stillServing();
  const ok = await rawExchange(srv.port, completion(json({ prompt: 'x', max_tokens: 2 })));
  assert.equal(ok.status, 200);
});

test('SIGTERM finishes the in-flight stream, then exits 0', async () => {
  const res = await fetch(`${srv.http}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: json({ prompt: 'Once', max_tokens: 40, stream: true, ignore_eos: true }),
  });
  const reader = res.body.getReader();
  let text = '';
  const first = await reader.read();
  text += new TextDecoder().decode(first.value);
  srv.proc.kill('SIGTERM');
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  assert.ok(text.trimEnd().endsWith('data: [DONE]'), text.slice(-200));
  const chunks = text.split('\n\n').filter((e) => e.startsWith('data: {'));
  const tokens = chunks.map((c) => JSON.parse(c.slice(6))).filter((c) => c.choices.length && c.choices[0].text).length;
  assert.ok(tokens >= 1);
  const { code } = await srv.exited;
  assert.equal(code, 0, srv.stderr());
});
