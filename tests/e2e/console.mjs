// console.mjs - a device's console through kvmgate as the official SDK client
// (@modelcontextprotocol/sdk 1.x) drives it: what a model does with a machine.
// Prints JSON lines (lib.mjs) for tests/integration/test_console_sdk.sh.
//
//   node console.mjs URL TOKEN DEVICE SIM_URL
//
// SIM_URL is the NanoKVM simulator behind DEVICE; its /sim/state is what a
// person looking at the machine would see (the text on its screen, the
// pointer, the power LED, the mounted image). Steps: get_screenshot, type a
// random word, keys, wait_for_screen for two words while they are typed and
// read_screen_text reading them, click a pixel, power cycle (confirm: true),
// mount and unmount an image; each step's line says what the tool answered
// and what the machine shows after it.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { randomBytes } from 'node:crypto';
import { fail, out } from './lib.mjs';

const [url, token, device, sim] = process.argv.slice(2);
let step = 'connect';

const state = async () => (await fetch(`${sim}/sim/state`)).json();
const text = (r) => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: { device, ...args } }, undefined,
    { timeout: 120000 });
  return { error: r.isError === true, text: text(r), content: r.content };
};

const client = new Client({ name: 'kvmgate-console-e2e', version: '1.0.0' });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  }));

  step = 'screenshot';
  let r = await call('get_screenshot', {});
  const img = r.content.find((c) => c.type === 'image');
  const jpeg = img ? Buffer.from(img.data, 'base64') : Buffer.alloc(0);
  out({ step, error: r.error, mime: img?.mimeType ?? null, jpeg: jpeg[0] === 0xff && jpeg[1] === 0xd8,
        text: r.text.split('\n')[0] });

  step = 'type';
  const word = 'w' + randomBytes(6).toString('hex');
  r = await call('type_text', { text: `\n${word}` });
  let s = await state();
  out({ step, error: r.error, text: r.text, on_screen: s.screen.text.some((l) => l.includes(word)) });

  step = 'keys';
  r = await call('send_keys', { keys: ['enter', 'shift+h', 'i'] });
  s = await state();
  out({ step, error: r.error, on_screen: s.screen.text.some((l) => l === 'Hi' || l.endsWith('Hi')) });

  // The screen's text: a wait started before two dictionary words are typed
  // (they read best in the simulator's 5x7 font) finds them, and
  // read_screen_text then reads them back.
  step = 'wait';
  const dict = ['rabbit', 'doctor', 'castle', 'candle', 'kernel', 'ocean', 'basket', 'butter',
    'letter', 'dinner', 'cotton', 'bottle', 'school', 'rocket', 'turtle', 'island'];
  const pick = () => dict[randomBytes(1)[0] % dict.length];
  const words = `${pick()} ${pick()}`;
  const waiting = client.callTool({ name: 'wait_for_screen',
    arguments: { device, text: words, timeout_ms: 60000 } }, undefined, { timeout: 120000 });
  await new Promise((done) => setTimeout(done, 500));
  r = await call('type_text', { text: `\n${words} ${randomBytes(2).readUInt16BE()}\n` });
  const w = await waiting;
  out({ step, error: r.error || w.isError === true, found: w.structuredContent?.found ?? null,
        words });
  step = 'read';
  r = await call('read_screen_text', {});
  out({ step, error: r.error, read: r.content.some((c) => c.type === 'text' && c.text.includes(words)) });

  step = 'click';
  r = await call('mouse_click', { x: 321, y: 123 });
  s = await state();
  out({ step, error: r.error, x: s.pointer.x, y: s.pointer.y, clicks: s.pointer.clicks });

  step = 'power';
  const boots = (await state()).boots;
  r = await call('power_action', { action: 'cycle', confirm: true });
  s = await state();
  out({ step, error: r.error, text: r.text, led: s.led, booted_again: s.boots > boots });
  r = await call('get_power_state', {});
  out({ step: 'power_state', error: r.error, text: r.text });

  step = 'media';
  r = await call('list_isos', {});
  out({ step: 'isos', error: r.error, text: r.text });
  r = await call('mount_iso', { image: 'debian.iso', confirm: true });
  s = await state();
  out({ step: 'mount', error: r.error, iso: s.iso, cdrom: s.cdrom });
  r = await call('get_mounted_iso', {});
  out({ step: 'mounted', error: r.error, text: r.text });
  r = await call('unmount_iso', {});
  s = await state();
  out({ step: 'unmount', error: r.error, iso: s.iso });

  step = 'close';
  await client.close();
  out({ step: 'done' });
} catch (e) {
  fail(step, e);
}
