// client2.mjs - kvmgate's /mcp as the v2 client (@modelcontextprotocol/client 2.x)
// uses it. Prints JSON lines (lib.mjs) for tests/integration/test_mcp_clients.sh.
//
//   node client2.mjs URL TOKEN
//
// Connects with "Authorization: Bearer TOKEN", lists the tools (the v2 client
// follows nextCursor itself), calls get_server_info and closes. Every HTTP
// exchange is printed as a {"step":"http"} line. With AUTO=1 the client
// negotiates the protocol era: it first probes with server/discover at
// MCP-Protocol-Version 2026-07-28 and must fall back to initialize, ending on
// 2025-11-25.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { fail, out, traceFetch } from './lib.mjs';

const [url, token] = process.argv.slice(2);
let step = 'setup';

try {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: traceFetch(),
  });
  const client = new Client({ name: 'kvmgate-e2e-v2', version: '1.0.0' },
    process.env.AUTO ? { versionNegotiation: { mode: 'auto' } } : undefined);
  client.onerror = (e) => console.error('client error:', e?.message ?? e);

  step = 'connect';
  await client.connect(transport);
  out({ step, server: client.getServerVersion(), protocol: client.getNegotiatedProtocolVersion(),
        era: client.getProtocolEra(), session: transport.sessionId });

  step = 'tools';
  const { tools } = await client.listTools();
  out({ step, names: tools.map((t) => t.name) });

  step = 'call';
  const result = await client.callTool({ name: 'get_server_info', arguments: {} });
  out({ step, name: 'get_server_info', result });

  step = 'close';
  await transport.terminateSession();
  await client.close();
  out({ step, ok: true });
  process.exit(0);
} catch (e) {
  fail(step, e);
}
