// nanokvm-client.mjs - the two NanoKVM channels curl cannot drive, for
// test_sim_nanokvm.sh. Needs Node 22 (global WebSocket).
//
//   node nanokvm-client.mjs ws URL TOKEN [--origin O] [--wait MS] STEP...
//     STEP: b:HEX (binary frame), t:TEXT (text frame), sleep:MS.
//     Prints one JSON line per text frame received ({"type","data"} with data
//     parsed again), then {"close":code} or {"open":true} if still open.
//   node nanokvm-client.mjs mjpeg URL TOKEN [--timeout MS]
//     Reads the first part of the stream and prints what it found as JSON.
import http from 'node:http';

const [mode, url, token, ...rest] = process.argv.slice(2);
const opt = (name, def) => {
  const i = rest.indexOf(name);
  if (i < 0) return def;
  const v = rest[i + 1];
  rest.splice(i, 2);
  return v;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function ws() {
  const origin = opt('--origin', null), wait = Number(opt('--wait', '300'));
  const headers = { Cookie: `nano-kvm-token=${token}` };
  if (origin) headers.Origin = origin;
  const sock = new WebSocket(url, { headers });
  sock.binaryType = 'arraybuffer';
  let closed = null;
  sock.onmessage = (e) => {
    if (typeof e.data !== 'string') return console.log(JSON.stringify({ binary: true }));
    let m;
    try { m = JSON.parse(e.data); m.data = JSON.parse(m.data); } catch { m = { raw: e.data }; }
    console.log(JSON.stringify(m));
  };
  sock.onclose = (e) => { closed = e.code; };
  sock.onerror = () => {};
  for (let i = 0; i < 50 && sock.readyState === 0; i++) await sleep(20);
  if (sock.readyState !== 1) {
    console.log(JSON.stringify({ refused: true }));
    return;
  }
  for (const step of rest) {
    if (closed !== null) break;
    if (step.startsWith('sleep:')) await sleep(Number(step.slice(6)));
    else if (step.startsWith('b:')) sock.send(Buffer.from(step.slice(2), 'hex'));
    else if (step.startsWith('t:')) sock.send(step.slice(2));
    await sleep(5);
  }
  for (let t = 0; t < wait && closed === null; t += 20) await sleep(20);
  console.log(JSON.stringify(closed === null ? { open: true } : { close: closed }));
  if (closed === null) sock.close();
  await sleep(50);
}

function mjpeg() {
  const timeout = Number(opt('--timeout', '3000'));
  const out = { status: 0 };
  const done = () => { console.log(JSON.stringify(out)); process.exit(0); };
  const req = http.get(url, { headers: { Cookie: `nano-kvm-token=${token}` } }, (res) => {
    out.status = res.statusCode;
    out.contentType = res.headers['content-type'];
    out.chunked = res.headers['transfer-encoding'] === 'chunked';
    out.serverDate = res.headers['x-server-date'] !== undefined;
    let buf = Buffer.alloc(0);
    res.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString();
      const body = buf.subarray(end + 4);
      const eoi = body.indexOf(Buffer.from([0xff, 0xd9]));
      if (eoi < 0) return;
      out.partHead = head.split('\r\n');
      const cl = /Content-Length: (\d+)/.exec(head);
      out.contentLength = cl ? Number(cl[1]) : null;
      out.jpegBytes = eoi + 2;
      out.soi = body[0] === 0xff && body[1] === 0xd8;
      out.crlfAfter = body.length >= eoi + 4 ? body.subarray(eoi + 2, eoi + 4).toString() === '\r\n' : null;
      for (let i = 2; i + 9 < body.length; ) {
        if (body[i] !== 0xff) break;
        const marker = body[i + 1], len = body.readUInt16BE(i + 2);
        if (marker === 0xc0) {
          out.height = body.readUInt16BE(i + 5);
          out.width = body.readUInt16BE(i + 7);
          break;
        }
        i += 2 + len;
      }
      req.destroy();
      done();
    });
  });
  req.on('error', () => {});
  setTimeout(() => { out.timeout = true; req.destroy(); done(); }, timeout);
}

if (mode === 'ws') await ws();
else if (mode === 'mjpeg') mjpeg();
else { console.error('usage: nanokvm-client.mjs ws|mjpeg URL TOKEN ...'); process.exit(2); }
