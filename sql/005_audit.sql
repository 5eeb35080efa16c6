-- The audit log: one hash chain per organisation.
--
-- Each event's canonical bytes (canon) are stored and hashed, never re-rendered:
--   row_hash = sha256(prev_hash || canon), prev_hash of the first event = the
--   organisation's anchor (32 zero bytes until retention moves it).
-- canon = {"body":<body>,"org":<org id>,"seq":<n>,"ts":"<UTC time>","v":1}, where
-- <body> is canonical JSON built by the application (shared/audit.c: keys
-- sorted, no whitespace, ASCII only); keys are sorted at every level, so the
-- whole of canon is canonical. Every other column is derived from canon by
-- audit_append() and re-checked against it by verification.
--
-- Appends are serialised per organisation by an advisory lock held until the
-- appending transaction commits, and must run in READ COMMITTED (each statement
-- of the function then sees the row committed just before it got the lock);
-- UNIQUE (org_id, seq) and UNIQUE (org_id, prev_hash) turn any mistake in that
-- into an error instead of a silent fork. UPDATE, DELETE and TRUNCATE are
-- refused by triggers.

CREATE TABLE audit_anchors (
    org_id      bigint PRIMARY KEY REFERENCES organisations(id),
    seq         bigint NOT NULL CHECK (seq >= 0),
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES organisations(id),
    seq             bigint NOT NULL CHECK (seq > 0),
    occurred_at     timestamptz NOT NULL,
    action          text NOT NULL,                -- tool name or REST route
    actor_kind      text NOT NULL CHECK (actor_kind IN ('user', 'token', 'cli', 'system')),
    actor_user_id   bigint,                       -- no foreign keys: the log outlives
    actor_user      text,                         -- the users, tokens and devices it names
    actor_token_id  bigint,
    actor_token     text,
    client_kind     text NOT NULL CHECK (client_kind IN ('mcp', 'rest', 'dashboard', 'cli', 'system')),
    client_name     text,
    client_version  text,
    source_ip       inet,
    device_id       bigint,
    device          text,
    outcome         text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error', 'pending')),
    reason          text,
    latency_ms      bigint,
    mcp_session_id  text,
    request_id      text,
    args            jsonb NOT NULL DEFAULT '{}',  -- arguments, secrets redacted
    canon           bytea NOT NULL,
    prev_hash       bytea NOT NULL CHECK (length(prev_hash) = 32),
    row_hash        bytea NOT NULL CHECK (length(row_hash) = 32),
    UNIQUE (org_id, seq),
    UNIQUE (org_id, prev_hash)
);

-- What queries filter on; every index leads with the organisation.
CREATE INDEX audit_events_time ON audit_events (org_id, occurred_at);
CREATE INDEX audit_events_action ON audit_events (org_id, action, seq);
CREATE INDEX audit_events_user ON audit_events (org_id, actor_user_id, seq)
    WHERE actor_user_id IS NOT NULL;
CREATE INDEX audit_events_token ON audit_events (org_id, actor_token_id, seq)
    WHERE actor_token_id IS NOT NULL;
CREATE INDEX audit_events_device ON audit_events (org_id, device_id, seq)
    WHERE device_id IS NOT NULL;
CREATE INDEX audit_events_outcome ON audit_events (org_id, outcome, seq)
    WHERE outcome <> 'ok';

-- Appends one event and returns its sequence number, hash and time.
-- p_body: the event body as canonical JSON text, built by shared/audit.c.
CREATE FUNCTION audit_append(p_org bigint, p_body text,
                             OUT o_seq bigint, OUT o_hash bytea, OUT o_ts text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_body  jsonb := p_body::jsonb;
    v_prev  bytea;
    v_seq   bigint;
    v_ts    timestamptz;
    v_canon bytea;
BEGIN
    IF jsonb_typeof(v_body) <> 'object' OR p_body !~ '^[\x20-\x7e]*$' THEN
        RAISE EXCEPTION 'audit body must be a canonical JSON object';
    END IF;
    -- Under REPEATABLE READ the snapshot predates the lock: the head read
    -- below could be stale. Refuse rather than rely on the unique keys.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit_append needs READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    -- One mutex per organisation until COMMIT; the key is namespaced because
    -- advisory locks share one 64-bit space.
    PERFORM pg_advisory_xact_lock(hashtextextended('kvmgate.audit:' || p_org, 0));
    SELECT e.row_hash, e.seq INTO v_prev, v_seq FROM audit_events e
     WHERE e.org_id = p_org ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT a.hash, a.seq INTO v_prev, v_seq FROM audit_anchors a WHERE a.org_id = p_org;
        IF NOT FOUND THEN
            v_prev := decode(repeat('00', 32), 'hex');
            v_seq := 0;
        END IF;
    END IF;
    -- Taken inside the lock, so seq order is time order; not now(), which is
    -- the start of the transaction.
    v_ts := clock_timestamp();
    o_seq := v_seq + 1;
    o_ts := to_char(v_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    v_canon := convert_to('{"body":' || p_body || ',"org":' || p_org || ',"seq":' || o_seq ||
                          ',"ts":"' || o_ts || '","v":1}', 'UTF8');
    o_hash := sha256(v_prev || v_canon);
    INSERT INTO audit_events (org_id, seq, occurred_at, action,
        actor_kind, actor_user_id, actor_user, actor_token_id, actor_token,
        client_kind, client_name, client_version, source_ip, device_id, device,
        outcome, reason, latency_ms, mcp_session_id, request_id, args,
        canon, prev_hash, row_hash)
    VALUES (p_org, o_seq, v_ts, v_body->>'action',
        v_body->'actor'->>'kind', (v_body->'actor'->>'user_id')::bigint,
        v_body->'actor'->>'user', (v_body->'actor'->>'token_id')::bigint,
        v_body->'actor'->>'token',
        v_body->'client'->>'kind', v_body->'client'->>'name', v_body->'client'->>'version',
        (v_body->>'source_ip')::inet, (v_body->>'device_id')::bigint, v_body->>'device',
        v_body->>'outcome', v_body->>'reason', (v_body->>'latency_ms')::bigint,
        v_body->>'mcp_session', v_body->>'request_id', coalesce(v_body->'args', '{}'),
        v_canon, v_prev, o_hash);
END $$;

-- The body of a stored canon, or NULL when canon is not JSON (tampered).
-- Verification compares the args column with it in SQL: jsonb against jsonb,
-- so numbers compare by value whatever their rendering.
CREATE FUNCTION audit_canon_body(p_canon bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN convert_from(p_canon, 'UTF8')::jsonb -> 'body';
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

-- Append-only: every UPDATE, DELETE and TRUNCATE is refused. (A superuser can
-- still disable the trigger; that is what verification is for.)
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_anchors_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
