-- MCP exchanges in flight that another worker must reach. A tools/call that
-- streams its response can be cancelled, and a request the server sent on
-- that stream (elicitation, sampling) waits for the client's answer; both
-- arrive as separate POSTs, served by any worker. The worker running the
-- call keeps a row per exchange and LISTENs on mcp_<session id>; the worker
-- receiving notifications/cancelled or the answer updates the row and
-- NOTIFYs. Rows exist only while the call runs; ending the session deletes
-- them (and wakes the call).

CREATE TABLE mcp_inflight (
    session_id  text NOT NULL REFERENCES mcp_sessions(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('call', 'request')),
    rpc_id      text NOT NULL CHECK (length(rpc_id) <= 300),  -- JSON text of the id
    cancelled   boolean NOT NULL DEFAULT false,
    answer      jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, kind, rpc_id)
);
CREATE INDEX mcp_sessions_last_seen ON mcp_sessions(last_seen_at);
