// token-proxy.mjs - a loopback HTTP proxy that adds a bearer token.
//
//   TOKEN=kvmg_... node token-proxy.mjs http://127.0.0.1:8080
//
// Listens on 127.0.0.1 on a free port and prints that port on one line. Every
// request is forwarded to the target as it came: the same method, path and
// query, every header with its case and order (Host and Origin included, so the
// server's DNS-rebinding checks see what the client sent), and the body
// streamed through. When the request has no Authorization header, one carrying
// $TOKEN is appended. Responses stream back the same way, status line and
// headers untouched, each chunk written as it arrives, so a text/event-stream
// response reaches the client event by event.
//
// It exists for clients that cannot send a header, the conformance suite
// among them; the server itself never has an unauthenticated path. No
// dependencies beyond Node. It stops on SIGTERM or SIGINT.
import http from 'node:http';

const target = new URL(process.argv[2] ?? '');
const token = process.env.TOKEN;
if (target.protocol !== 'http:' || !token) {
  console.error('usage: TOKEN=<token> node token-proxy.mjs http://HOST:PORT');
  process.exit(2);
}

// Keep-alive upstream, as a client's own connection would be.
const agent = new http.Agent({ keepAlive: true });

// rawHeaders is [name, value, name, value, ...], the form http.request and
// writeHead accept, so names keep their case and repeated headers survive.
function withToken(raw) {
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i].toLowerCase() === 'authorization') return raw;
  return [...raw, 'Authorization', `Bearer ${token}`];
}

const server = http.createServer((req, res) => {
  const up = http.request({
    agent,
    host: target.hostname,
    port: target.port || 80,
    method: req.method,
    path: req.url,
    headers: withToken(req.rawHeaders),
    setHost: false,
  });
  up.on('response', (ur) => {
    res.sendDate = false;
    res.writeHead(ur.statusCode, ur.statusMessage, ur.rawHeaders);
    res.flushHeaders();
    ur.on('error', () => res.destroy());
    ur.pipe(res);
  });
  up.on('error', (e) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`token-proxy: ${e.message}\n`);
  });
  // A client that goes away takes its upstream request with it.
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
});

// Requests from the conformance suite carry their own timeouts.
server.requestTimeout = 0;
server.headersTimeout = 60_000;
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
for (const sig of ['SIGTERM', 'SIGINT'])
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    agent.destroy();
    process.exit(0);
  });
