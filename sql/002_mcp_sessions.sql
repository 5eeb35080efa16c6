-- MCP sessions: one row per initialize on /mcp. The id travels in the
-- Mcp-Session-Id header; a session is dead once ended_at is set or after
-- 30 idle minutes (fcgi/mcp.c), and is only ever used by the user whose
-- token opened it, within the same organisation.

CREATE TABLE mcp_sessions (
    id                   text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    org_id               bigint NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    token_id             bigint NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    protocol_version     text NOT NULL,
    client_name          text NOT NULL CHECK (length(client_name) <= 200),
    client_version       text NOT NULL CHECK (length(client_version) <= 200),
    client_capabilities  jsonb NOT NULL DEFAULT '{}',
    log_level            text CHECK (log_level IN ('debug', 'info', 'notice', 'warning',
                                                   'error', 'critical', 'alert', 'emergency')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_seen_at         timestamptz NOT NULL DEFAULT now(),
    ended_at             timestamptz
);
CREATE INDEX mcp_sessions_token ON mcp_sessions(token_id);
