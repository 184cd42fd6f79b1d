// @grpc/grpc-js with @grpc/proto-loader against `qsl serve`: unary and streaming generation,
// client cancellation (the server frees the request), errors as status codes, health and
// reflection.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SOURCE_DIR, eventually, metric, requireClient, startServer } from './lib.mjs';

const grpc = requireClient('@grpc/grpc-js');
const protoLoader = requireClient('@grpc/proto-loader');

let srv;
let completions;
let health;
let reflection;

function load(file, includeDir) {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: [includeDir],
  }));
}

before(async () => {
  srv = await startServer();
  const qsl = load('qsl/v1/completions.proto', path.join(SOURCE_DIR, 'proto'));
  const protos = path.join(import.meta.dirname, 'protos');
  const h = load('health.proto', protos);
  const r = load('reflection.proto', protos);
  const creds = grpc.credentials.createInsecure();
  completions = new qsl.qsl.v1.Completions(srv.grpc, creds);
  health = new h.grpc.health.v1.Health(srv.grpc, creds);
  reflection = new r.grpc.reflection.v1alpha.ServerReflection(srv.grpc, creds);
});
after(async () => {
  for (const c of [completions, health, reflection]) c.close();
  const { code } = await srv.stop();
  assert.equal(code, 0, srv.stderr());
});

const unary = (client, method, req) => new Promise((resolve, reject) => {
  client[method](req, (err, res) => (err ? reject(err) : resolve(res)));
});

test('unary Generate', async () => {
  const res = await unary(completions, 'Generate', {
    text: 'Once upon a time', params: { max_tokens: 8, temperature: 0, n: 2 },
  });
  assert.match(res.id, /^cmpl-/);
  assert.equal(res.model, srv.model);
  assert.equal(res.choices.length, 2);
  for (const c of res.choices) {
    assert.ok(['FINISH_REASON_LENGTH', 'FINISH_REASON_STOP'].includes(c.finish_reason));
    assert.ok(c.token_ids.length > 0);
  }
  // Greedy and batch-invariant: both choices agree.
  assert.equal(res.choices[0].text, res.choices[1].text);
  assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);
});

test('GenerateStream matches Generate', async () => {
  const req = { text: 'The river', params: { max_tokens: 10, temperature: 0 } };
  const whole = await unary(completions, 'Generate', req);
  const call = completions.GenerateStream(req);
  let text = '';
  let usage = null;
  for await (const msg of call) {
    for (const c of msg.choices) text += c.text;
    if (msg.usage) usage = msg.usage;
  }
  assert.equal(text, whole.choices[0].text);
  assert.deepEqual(usage, whole.usage);
});

test('cancelling a stream frees the request on the server', async () => {
  const call = completions.GenerateStream({
    text: 'Tell a long story', params: { max_tokens: 400, temperature: 0, ignore_eos: true },
  });
  const cancelled = new Promise((resolve) => call.on('error', (e) => resolve(e.code)));
  await new Promise((resolve) => call.once('data', resolve));
  call.cancel();
  assert.equal(await cancelled, grpc.status.CANCELLED);
  assert.ok(await eventually(async () =>
    (await metric(srv.http, 'qsl_request_finished_total{finish_reason="cancelled"}')) >= 1 &&
    (await metric(srv.http, 'qsl_requests_running')) === 0));
});

test('bad parameters are INVALID_ARGUMENT naming the parameter; unknown model NOT_FOUND', async () => {
  await assert.rejects(unary(completions, 'Generate', { text: 'x', params: { max_tokens: -2 } }),
    (e) => e.code === grpc.status.INVALID_ARGUMENT && e.details.startsWith('max_tokens:'));
  await assert.rejects(unary(completions, 'Generate', { model: 'gpt-4', text: 'x' }),
    (e) => e.code === grpc.status.NOT_FOUND);
});

test('Tokenize and Detokenize round trip', async () => {
  const t = await unary(completions, 'Tokenize', { text: 'Hello world' });
  assert.ok(t.token_ids.length >= 2);
  const d = await unary(completions, 'Detokenize', { token_ids: t.token_ids });
  assert.equal(d.text, 'Hello world');
});

test('grpc.health.v1 says SERVING', async () => {
  assert.equal((await unary(health, 'Check', { service: '' })).status, 'SERVING');
});

test('server reflection lists qsl.v1.Completions and health', async () => {
  const call = reflection.ServerReflectionInfo();
  const reply = new Promise((resolve, reject) => {
    call.on('data', resolve);
    call.on('error', reject);
  });
  call.write({ list_services: '' });
  const res = await reply;
  call.end();
  const names = res.list_services_response.service.map((s) => s.name);
  assert.ok(names.includes('qsl.v1.Completions'), names.join(','));
  assert.ok(names.includes('grpc.health.v1.Health'), names.join(','));
});
