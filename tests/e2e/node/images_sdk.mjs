// The official OpenAI Node SDK, unchanged, against beatra's /openai/v1 images surface.
// Usage: node images_sdk.mjs <scenario>; env BEATRA_URL, BEATRA_KEY, BEATRA_POOR_KEY and
// BEATRA_PNG_A / BEATRA_PNG_B (paths of two PNG files). Prints one JSON object per scenario;
// an unexpected SDK error exits non-zero with its message.
import fs from 'node:fs';
import OpenAI, { toFile } from 'openai';

const baseURL = `${process.env.BEATRA_URL}/openai/v1`;
const client = (opts = {}) =>
  new OpenAI({ baseURL, apiKey: process.env.BEATRA_KEY, maxRetries: 0, timeout: 60_000, ...opts });

const urls = (res) => res.data.map((d) => d.url);

const scenarios = {
  async generate() {
    const res = await client().images.generate({ model: 'gpt-image-2', prompt: 'a lighthouse', n: 2 });
    return { urls: urls(res), usage: res.usage, beatra: res.beatra };
  },
  async b64() {
    const res = await client().images.generate({
      model: 'gpt-image-2', prompt: 'a boat', response_format: 'b64_json', output_format: 'jpeg',
    });
    return { b64: res.data.map((d) => d.b64_json), beatra: res.beatra };
  },
  async edit() {
    const image = await Promise.all([
      toFile(fs.createReadStream(process.env.BEATRA_PNG_A), 'a.png', { type: 'image/png' }),
      toFile(fs.createReadStream(process.env.BEATRA_PNG_B), 'b.png', { type: 'image/png' }),
    ]);
    const res = await client().images.edit({ model: 'gpt-image-2', prompt: 'merge them', image });
    return { urls: urls(res), beatra: res.beatra };
  },
  async timeout() {
    // A per-request timeout is sent as X-Stainless-Timeout (a client-level one is not); the
    // gateway answers before it fires. maxRetries: 2 shows `x-should-retry: false` is obeyed.
    try {
      await client({ maxRetries: 2 }).images.generate({
        model: 'gpt-image-2', prompt: 'a slow fox [sandbox:delay=6]',
      }, { timeout: 4_000 });
    } catch (err) {
      if (err instanceof OpenAI.APIError) return { status: err.status, error: err.error };
      throw err;
    }
    throw new Error('expected a timeout error');
  },
  async poor() {
    try {
      await client({ apiKey: process.env.BEATRA_POOR_KEY }).images.generate({
        model: 'gpt-image-2', prompt: 'a fox',
      });
    } catch (err) {
      if (err instanceof OpenAI.APIError) return { status: err.status, error: err.error };
      throw err;
    }
    throw new Error('expected 402');
  },
  async idempotent() {
    const headers = { 'Idempotency-Key': `node-${process.pid}` };
    const body = { model: 'gpt-image-2', prompt: 'the same fox' };
    const first = await client().images.generate(body, { headers });
    const again = await client().images.generate(body, { headers });
    return { tasks: [first.beatra.task_id, again.beatra.task_id], credits: [first.usage.credits, again.usage.credits] };
  },
};

const name = process.argv[2];
try {
  console.log(JSON.stringify(await scenarios[name]()));
} catch (err) {
  console.error(`${name}: ${err?.stack ?? err}`);
  process.exit(1);
}
