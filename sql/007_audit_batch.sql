-- Appends several events in one statement, so in one transaction with one
-- commit: the FastCGI program's audit appender (fcgi/appender.c) gathers
-- the events workers hand it and writes them together. Each goes through
-- audit_append() (its lock, its checks, its chain) in the order given;
-- p_events is a JSON array of [organisation id, canonical body text].
-- Returns the sequence numbers in the same order. Any failure fails the
-- whole batch; the appender then appends the events one by one.
CREATE FUNCTION audit_append_batch(p_events jsonb) RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    e jsonb;
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(p_events) WITH ORDINALITY ORDER BY ordinality LOOP
        RETURN NEXT (SELECT o_seq FROM audit_append((e->>0)::bigint, e->>1));
    END LOOP;
END $$;
