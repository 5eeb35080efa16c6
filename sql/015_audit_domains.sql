-- The value rules of audit_events move from CHECK constraints to domains.
--
-- PostgreSQL rebuilds a table's CHECK constraints from their stored text
-- (parsing and planning each) in every statement that inserts into it: with
-- six of them that was most of the fixed cost of the audit appender's one
-- INSERT per batch. A domain's constraints are prepared once per connection
-- and kept in its type cache. The rules themselves are unchanged: an
-- insert breaking one fails as before, naming the domain.
CREATE DOMAIN audit_seq AS bigint CHECK (VALUE > 0);
CREATE DOMAIN audit_hash AS bytea CHECK (length(VALUE) = 32);
CREATE DOMAIN audit_actor_kind AS text
    CHECK (VALUE IN ('user', 'token', 'cli', 'system'));
CREATE DOMAIN audit_client_kind AS text
    CHECK (VALUE IN ('mcp', 'rest', 'dashboard', 'cli', 'system'));
CREATE DOMAIN audit_outcome AS text
    CHECK (VALUE IN ('ok', 'denied', 'error', 'pending'));

ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_seq_check,
    DROP CONSTRAINT audit_events_actor_kind_check,
    DROP CONSTRAINT audit_events_client_kind_check,
    DROP CONSTRAINT audit_events_outcome_check,
    DROP CONSTRAINT audit_events_prev_hash_check,
    DROP CONSTRAINT audit_events_row_hash_check,
    ALTER seq TYPE audit_seq,
    ALTER actor_kind TYPE audit_actor_kind,
    ALTER client_kind TYPE audit_client_kind,
    ALTER outcome TYPE audit_outcome,
    ALTER prev_hash TYPE audit_hash,
    ALTER row_hash TYPE audit_hash;
