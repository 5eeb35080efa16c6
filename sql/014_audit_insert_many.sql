-- Appends a batch of events whose chain links the audit appender
-- (fcgi/appender.c) has already computed: it knows each organisation's head
-- from its last batch, so it numbers the events, stamps their time, builds
-- each canon and hashes it itself, and PostgreSQL only checks and inserts.
-- audit_append_many (sql/010) did all of that in PL/pgSQL, event by event,
-- re-parsing the batch as JSON: about three quarters of the appender's
-- database time.
--
-- Nothing is trusted: under each organisation's lock (ascending order, the
-- same lock as audit_append) the first event given must follow the stored
-- head, and every event must be exactly what audit_append would have
-- written: a printable-ASCII JSON object as body, its time in canonical
-- form, seq one more than the event before, prev_hash that event's hash and
-- row_hash = SHA-256(prev_hash || canon), canon built here from the parts.
-- An event that is not refuses the whole batch with an error. A head that
-- moved (the CLI or a worker appended by itself) is not an error: nothing
-- is inserted and the answer is 0, and the appender reads the heads again.
--
-- The arrays run in parallel, one element per event, events of one
-- organisation in chain order. Returns the number of events inserted.
DROP FUNCTION audit_append_many(jsonb);

CREATE FUNCTION audit_insert_many(p_org bigint[], p_seq bigint[], p_ts text[],
                                  p_body text[], p_prev bytea[], p_hash bytea[])
    RETURNS bigint
-- Planned once: custom plans (the default for the first calls and whenever
-- they look cheaper) re-planned the head check on every call, which cost
-- more than running it.
SET plan_cache_mode = force_generic_plan
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_n bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit_insert_many needs READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    IF cardinality(p_org) IS DISTINCT FROM cardinality(p_seq) OR
       cardinality(p_org) IS DISTINCT FROM cardinality(p_ts) OR
       cardinality(p_org) IS DISTINCT FROM cardinality(p_body) OR
       cardinality(p_org) IS DISTINCT FROM cardinality(p_prev) OR
       cardinality(p_org) IS DISTINCT FROM cardinality(p_hash) THEN
        RAISE EXCEPTION 'audit_insert_many: arrays of different lengths';
    END IF;
    -- Every organisation's lock, in ascending order (the same lock as
    -- audit_append), before the statement below takes its snapshot.
    PERFORM pg_advisory_xact_lock(hashtextextended('kvmgate.audit:' || o, 0))
       FROM (SELECT DISTINCT o FROM unnest(p_org) o ORDER BY 1) x;
    -- The first event of each organisation follows its head (the last
    -- event, else the anchor, else seq 0 and a zero hash).
    PERFORM 1
       FROM (SELECT DISTINCT ON (u.o) u.o, u.s, u.p
               FROM unnest(p_org, p_seq, p_prev) u(o, s, p) ORDER BY u.o, u.s) f
       LEFT JOIN LATERAL (SELECT x.seq, x.row_hash FROM audit_events x
                           WHERE x.org_id = f.o ORDER BY x.seq DESC LIMIT 1) e ON true
       LEFT JOIN audit_anchors a ON a.org_id = f.o
      WHERE f.s <> coalesce(e.seq, a.seq, 0) + 1
         OR f.p <> coalesce(e.row_hash, a.hash, decode(repeat('00', 32), 'hex'));
    IF FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO audit_events (org_id, seq, occurred_at, action,
        actor_kind, actor_user_id, actor_user, actor_token_id, actor_token,
        client_kind, client_name, client_version, source_ip, device_id, device,
        outcome, reason, latency_ms, mcp_session_id, request_id, args,
        canon, prev_hash, row_hash)
    SELECT v.o, v.s, v.t::timestamptz, v.b->>'action',
        v.b->'actor'->>'kind', (v.b->'actor'->>'user_id')::bigint,
        v.b->'actor'->>'user', (v.b->'actor'->>'token_id')::bigint, v.b->'actor'->>'token',
        v.b->'client'->>'kind', v.b->'client'->>'name', v.b->'client'->>'version',
        (v.b->>'source_ip')::inet, (v.b->>'device_id')::bigint, v.b->>'device',
        v.b->>'outcome', v.b->>'reason', (v.b->>'latency_ms')::bigint,
        v.b->>'mcp_session', v.b->>'request_id', coalesce(v.b->'args', '{}'), v.c, v.p, v.h
      FROM (SELECT u.o, u.s, u.t, u.bt, u.bt::jsonb AS b, u.p, u.h,
                   convert_to('{"body":' || u.bt || ',"org":' || u.o || ',"seq":' || u.s ||
                              ',"ts":"' || u.t || '","v":1}', 'UTF8') AS c,
                   lag(u.h) OVER w AS lh, lag(u.s) OVER w AS ls
              FROM unnest(p_org, p_seq, p_ts, p_body, p_prev, p_hash) AS u(o, s, t, bt, p, h)
            WINDOW w AS (PARTITION BY u.o ORDER BY u.s)) v
     WHERE CASE WHEN v.bt ~ '^[\x20-\x7e]*$' AND jsonb_typeof(v.b) = 'object'
                     AND to_char(v.t::timestamptz AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') = v.t
                     AND (v.lh IS NULL OR (v.lh = v.p AND v.ls = v.s - 1))
                     AND v.h = sha256(v.p || v.c)
                THEN true ELSE audit_refuse(v.o, v.s) END;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $$;

-- Raises the error of an event audit_insert_many refuses (a function, so
-- that the check can stay in the INSERT's one pass over the batch).
CREATE FUNCTION audit_refuse(p_org bigint, p_seq bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit event % of organisation % is not a valid link of its chain',
        p_seq, p_org;
END $$;
