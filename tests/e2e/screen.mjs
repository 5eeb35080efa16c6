// screen.mjs - waiting for a device's screen through kvmgate as the official
// SDK client (@modelcontextprotocol/sdk 1.x) does it: with a progress
// callback, and with an AbortSignal that cancels the call.
// Prints JSON lines (lib.mjs) for tests/integration/test_screen_text.sh.
//
//   node screen.mjs URL TOKEN DEVICE WORDS
//
// Steps: wait_for_screen for WORDS while type_text types them (found, with
// progress notifications on the way); a wait for text that never comes,
// aborted after 2 s (how long the call took to end).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fail, out } from './lib.mjs';

const [url, token, device, words] = process.argv.slice(2);
let step = 'connect';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const client = new Client({ name: 'kvmgate-screen-e2e', version: '1.0.0' });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  }));

  step = 'wait_text';
  const progress = [];
  const waiting = client.callTool(
    { name: 'wait_for_screen', arguments: { device, text: words, timeout_ms: 60000 } },
    undefined,
    { timeout: 90000, resetTimeoutOnProgress: true, onprogress: (p) => progress.push(p) });
  // Type once the wait has looked at the screen at least once.
  for (let i = 0; i < 100 && progress.length === 0; i++) await sleep(100);
  const typed = await client.callTool({ name: 'type_text', arguments: { device, text: `\n${words}\n` } });
  const r = await waiting;
  out({ step, error: r.isError === true, typed: typed.isError !== true,
        found: r.structuredContent?.found ?? null, line: r.structuredContent?.line ?? null,
        elapsed_ms: r.structuredContent?.elapsed_ms ?? null, progress: progress.length,
        increasing: progress.every((p, i) => i === 0 || p.progress > progress[i - 1].progress),
        total: progress[0]?.total ?? null, message: progress.at(-1)?.message ?? null });

  step = 'cancel';
  const ac = new AbortController();
  const start = Date.now();
  const never = client.callTool(
    { name: 'wait_for_screen', arguments: { device, text: 'nothing like this is shown', timeout_ms: 120000 } },
    undefined, { timeout: 150000, signal: ac.signal, onprogress: () => {} });
  setTimeout(() => ac.abort('the user gave up'), 2000);
  let rejected = false;
  try { await never; } catch { rejected = true; }
  out({ step, rejected, ms: Date.now() - start });
  // The cancellation goes out as its own POST: let it leave before closing.
  await sleep(1500);

  await client.close();
  out({ step: 'done' });
} catch (err) {
  fail(step, err);
}
