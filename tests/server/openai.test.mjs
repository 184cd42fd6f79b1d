// The official `openai` SDK, unchanged, against `qsl serve`: completions plain and streamed, n,
// logprobs, stop, seed reproducibility, and the SDK's error classes for 400 and 401.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { requireClient, startServer } from './lib.mjs';

const { OpenAI } = requireClient('openai');

let srv;
let client;
const KEY = 'test-key-123';

before(async () => {
  srv = await startServer(['--api-key', KEY]);
  client = new OpenAI({ apiKey: KEY, baseURL: `${srv.http}/v1`, maxRetries: 0, timeout: 60000 });
});
after(async () => {
  const { code } = await srv.stop();
  assert.equal(code, 0, srv.stderr());
});

const greedy = (extra = {}) => client.completions.create({
  model: srv.model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ...extra,
});

test('models.list names the served model', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [srv.model]);
});

test('non-streaming completion has OpenAI fields', async () => {
  const r = await greedy();
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, srv.model);
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('streaming yields the same greedy text, then usage', async () => {
  const whole = await greedy();
  const stream = await greedy({ stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test('n=2 returns two indexed choices', async () => {
  const r = await client.completions.create({
    model: srv.model, prompt: 'The sea', max_tokens: 6, n: 2, temperature: 1, seed: 5,
  });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.ok(r.usage.completion_tokens <= 12);
});

test('logprobs come in the legacy completions shape', async () => {
  const r = await greedy({ logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, r.usage.completion_tokens);
  assert.equal(lp.token_logprobs.length, lp.tokens.length);
  assert.equal(lp.text_offset.length, lp.tokens.length);
  for (let i = 0; i < lp.tokens.length; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const top = Object.values(lp.top_logprobs[i]);
    assert.ok(top.length >= 1 && top.length <= 3);
    // Greedy: the sampled token is the most likely one.
    assert.ok(Math.max(...top) <= lp.token_logprobs[i] + 1e-4);
  }
});

test('stop ends the text before the stop string', async () => {
  const text = (await greedy({ max_tokens: 24 })).choices[0].text;
  const cut = Math.floor(text.length / 2);
  const stop = text.slice(cut, cut + 3);
  assert.ok(stop.length === 3, `generated text too short to pick a stop string: ${JSON.stringify(text)}`);
  const r = await greedy({ max_tokens: 24, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].text, text.slice(0, text.indexOf(stop)));
});

test('the same seed reproduces a sampled completion', async () => {
  const sample = () => client.completions.create({
    model: srv.model, prompt: 'In a village', max_tokens: 16, temperature: 1.0, top_p: 0.9, seed: 1234,
  });
  const [a, b] = await Promise.all([sample(), sample()]);
  assert.equal(a.choices[0].text, b.choices[0].text);
});

test('a bad parameter raises BadRequestError naming it', async () => {
  await assert.rejects(greedy({ max_tokens: -1 }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError, String(err));
    assert.equal(err.status, 400);
    assert.equal(err.param, 'max_tokens');
    assert.equal(err.type, 'invalid_request_error');
    return true;
  });
});

test('a wrong key raises AuthenticationError', async () => {
  const wrong = new OpenAI({ apiKey: 'nope', baseURL: `${srv.http}/v1`, maxRetries: 0 });
  await assert.rejects(wrong.completions.create({ model: srv.model, prompt: 'x', max_tokens: 1 }),
    (err) => err instanceof OpenAI.AuthenticationError && err.status === 401);
});
