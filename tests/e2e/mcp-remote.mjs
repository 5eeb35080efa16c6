// mcp-remote.mjs - kvmgate's /mcp through the mcp-remote stdio bridge, the way
// Claude Desktop reaches a remote server: the SDK's StdioClientTransport starts
//
//   mcp-remote URL --transport http-only --header "Authorization:Bearer TOKEN"
//
// (what `npx mcp-remote …` runs, from this directory's node_modules), then
// lists the tools through it and calls one. Prints JSON lines (lib.mjs).
//
//   node mcp-remote.mjs URL TOKEN
//
// CALL=name ARGS='{...}' choose the tool (default get_server_info). The bridge
// keeps its state in MCP_REMOTE_CONFIG_DIR (set it to a scratch directory);
// its log goes to stderr.
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { fail, out } from './lib.mjs';

const [url, token] = process.argv.slice(2);
const env = process.env;
let step = 'setup';

try {
  const bridge = fileURLToPath(new URL('node_modules/mcp-remote/dist/proxy.js', import.meta.url));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [bridge, url, '--transport', 'http-only', '--header', `Authorization:Bearer ${token}`],
    env: { ...env },
    stderr: 'inherit',
  });
  const client = new Client({ name: 'kvmgate-e2e-stdio', version: '1.0.0' });

  step = 'connect';
  await client.connect(transport);
  out({ step, server: client.getServerVersion(), capabilities: client.getServerCapabilities() });

  step = 'tools';
  const { tools } = await client.listTools();
  out({ step, names: tools.map((t) => t.name) });

  step = 'call';
  const name = env.CALL ?? 'get_server_info';
  const result = await client.callTool({ name, arguments: JSON.parse(env.ARGS ?? '{}') });
  out({ step, name, result });

  step = 'close';
  await client.close();
  out({ step, ok: true });
  process.exit(0);
} catch (e) {
  fail(step, e);
}
