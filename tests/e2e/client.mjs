// client.mjs - kvmgate's /mcp as the official SDK client (@modelcontextprotocol/sdk
// 1.x, StreamableHTTPClientTransport) uses it. Prints JSON lines (lib.mjs) for
// tests/integration/test_mcp_clients.sh.
//
//   node client.mjs URL [TOKEN]
//
// Connects with "Authorization: Bearer TOKEN" (none when TOKEN is empty),
// lists the tools following nextCursor, pings, optionally calls one tool, and
// ends the session with DELETE. Every HTTP exchange is printed as a
// {"step":"http"} line. Environment:
//   CALL=name ARGS='{...}'  the tool to call and its arguments
//   PROGRESS=1              ask for progress: print each notification
//                           ({"step":"progress"}) and let each one restart the timeout
//   TIMEOUT_MS=n            request timeout (SDK default 60000)
//   CANCEL_MS=n             abort the call after n ms; the SDK then sends
//                           notifications/cancelled, printed as {"step":"cancel-sent"}
//   ELICIT=accept|decline|cancel
//                           declare the form elicitation capability and answer
//                           every elicitation/create this way ({"step":"elicitation"})
//   ELICIT_CONTENT='{...}'  the content of an accept (default: filled from the schema)
//   KEEP_SESSION=1          do not end the session
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { elicitAnswer, fail, out, traceFetch } from './lib.mjs';

const [url, token] = process.argv.slice(2);
const env = process.env;
let step = 'setup';

try {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : undefined,
    fetch: traceFetch(),
  });

  // Cancellation goes out as a notification of its own; wait for its POST
  // and report how it went.
  const sends = [];
  const send = transport.send.bind(transport);
  transport.send = (msg, opts) => {
    const p = send(msg, opts);
    if (msg.method === 'notifications/cancelled')
      sends.push(p.then(
        () => out({ step: 'cancel-sent', ...msg.params, delivered: true }),
        (e) => out({ step: 'cancel-sent', ...msg.params, delivered: false, error: String(e?.message ?? e) })));
    return p;
  };

  const capabilities = env.ELICIT ? { elicitation: { form: {} } } : {};
  const client = new Client({ name: 'kvmgate-e2e', version: '1.0.0' }, { capabilities });
  client.onerror = (e) => console.error('client error:', e?.message ?? e);
  if (env.ELICIT)
    client.setRequestHandler(ElicitRequestSchema, (req) => {
      const answer = elicitAnswer(req.params, env.ELICIT,
                                  env.ELICIT_CONTENT && JSON.parse(env.ELICIT_CONTENT));
      out({ step: 'elicitation', mode: req.params.mode ?? 'form', message: req.params.message,
            schema: req.params.requestedSchema, answer });
      return answer;
    });

  step = 'connect';
  await client.connect(transport);
  out({ step, server: client.getServerVersion(), protocol: transport.protocolVersion,
        session: transport.sessionId, capabilities: client.getServerCapabilities(),
        instructions: client.getInstructions() ?? null });

  step = 'tools';
  const tools = [];
  let cursor, pages = 0;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    tools.push(...page.tools);
    pages++;
    if (page.nextCursor !== undefined && page.nextCursor === cursor)
      throw new Error(`tools/list returned the same cursor twice: ${cursor}`);
    cursor = page.nextCursor;
  } while (cursor !== undefined && pages < 100);
  out({ step, names: tools.map((t) => t.name), pages });

  step = 'ping';
  await client.ping();
  out({ step, ok: true });

  if (env.CALL) {
    step = 'call';
    const opts = {};
    if (env.TIMEOUT_MS) opts.timeout = Number(env.TIMEOUT_MS);
    if (env.PROGRESS) {
      opts.onprogress = (p) => out({ step: 'progress', ...p });
      opts.resetTimeoutOnProgress = true;
    }
    let abort;
    if (env.CANCEL_MS) {
      abort = new AbortController();
      opts.signal = abort.signal;
      setTimeout(() => abort.abort('cancelled by the e2e client'), Number(env.CANCEL_MS));
    }
    const started = Date.now();
    try {
      const result = await client.callTool(
        { name: env.CALL, arguments: JSON.parse(env.ARGS ?? '{}') }, undefined, opts);
      out({ step, name: env.CALL, ms: Date.now() - started, result });
    } catch (e) {
      if (!abort?.signal.aborted) throw e;
      out({ step: 'cancelled', name: env.CALL, ms: Date.now() - started,
            error: e?.constructor?.name, message: String(e?.message ?? e) });
    }
    await Promise.all(sends);
  }

  if (!env.KEEP_SESSION) {
    step = 'terminate';
    const session = transport.sessionId;
    await transport.terminateSession();
    out({ step, session, ok: transport.sessionId === undefined });
  }
  step = 'close';
  await client.close();
  process.exit(0);
} catch (e) {
  fail(step, e);
}
