// lib.mjs - what the e2e client drivers share: JSON-line output for the shell
// tests, an HTTP trace of what a client really sent, elicitation answers.

// out(obj): one JSON object per line on stdout; the shell tests read these with jq.
export function out(obj) {
  console.log(JSON.stringify(obj));
}

// fail(step, err): reports an error as a JSON line and on stderr, exits 1.
export function fail(step, err) {
  const e = {
    step: 'error',
    where: step,
    error: err?.constructor?.name ?? typeof err,
    code: err?.code ?? null,
    message: String(err?.message ?? err),
  };
  out(e);
  console.error(`FAILED at ${step}: ${e.error} ${e.code ?? ''} ${e.message}`);
  process.exit(1);
}

// The JSON-RPC method (or "response") and id of a request body, when it is one.
function rpcOf(body) {
  if (typeof body !== 'string') return {};
  try {
    const m = JSON.parse(body);
    return { rpc: m.method ?? (m.result || m.error ? 'response' : undefined), id: m.id };
  } catch {
    return {};
  }
}

// traceFetch(): a fetch that prints one {"step":"http",...} line per exchange:
// the HTTP method, the JSON-RPC method and id it carried, the version and
// session headers sent, the status and content type received. Tests use it to
// see what a client put on the wire (the GET after initialize, the probe of a
// dual-era client, notifications/cancelled, the DELETE).
export function traceFetch() {
  return async (url, init = {}) => {
    const h = new Headers(init.headers);
    const line = {
      step: 'http',
      method: init.method ?? 'GET',
      ...rpcOf(init.body),
      version: h.get('mcp-protocol-version'),
      session: h.has('mcp-session-id'),
    };
    try {
      const res = await fetch(url, init);
      out({ ...line, status: res.status, type: res.headers.get('content-type') });
      return res;
    } catch (e) {
      out({ ...line, status: null, failed: String(e?.message ?? e) });
      throw e;
    }
  };
}

// A value for one field of a form elicitation's requestedSchema: its default,
// else the first allowed value, else something of the right type and format.
function sample(p) {
  if (p.default !== undefined) return p.default;
  if (p.enum) return p.enum[0];
  if (p.oneOf?.[0]?.const !== undefined) return p.oneOf[0].const;
  switch (p.type) {
    case 'boolean': return true;
    case 'number':
    case 'integer': return p.minimum ?? 1;
    case 'array': {
      const items = p.items ?? {};
      const first = items.enum?.[0] ?? items.anyOf?.[0]?.const;
      return first === undefined ? [] : [first];
    }
    default:
      switch (p.format) {
        case 'email': return 'e2e@example.com';
        case 'uri': return 'https://example.com/';
        case 'date': return '2026-01-01';
        case 'date-time': return '2026-01-01T00:00:00Z';
        default: return 'e2e'.padEnd(p.minLength ?? 0, 'x');
      }
  }
}

// elicitAnswer(params, action, content): the ElicitResult a client returns.
// An accept without given content fills every field from the schema.
export function elicitAnswer(params, action, content) {
  if (action !== 'accept') return { action };
  if (content) return { action, content };
  const filled = {};
  for (const [k, p] of Object.entries(params.requestedSchema?.properties ?? {}))
    filled[k] = sample(p);
  return { action, content: filled };
}
