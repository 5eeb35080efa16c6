#!/usr/bin/env bash
# The audit chain in a real stack's PostgreSQL: 8 clients appending 2,000
# events at once (no gap, no fork, seq order is time order), secrets redacted,
# one chain per organisation, the append-only triggers, and tampering as a
# superuser would do it (one byte changed, a row deleted, a row replaced, a
# forged row inserted, a column edited, a checkpoint signature altered, a
# checkpoint by another key): verification from the database and from an
# export reports exactly that event and why. Checkpoints and key pinning.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

new_stack a || { not_ok "stack starts"; exit 1; }

kv() { KVMGATE_VAR_DIR=$a_var "$bin/kvmgate" "$@"; }
quiet() { "$@" >/dev/null; }

# psql on the stack's private cluster, as its superuser.
sql() {
  local run=()
  [ "$(id -u)" -eq 0 ] && run=(runuser -u kvmgate --)
  "${run[@]}" psql -h "$a_var/pg/run" -U kvmgate -d kvmgate -XAtq -v ON_ERROR_STOP=1 -c "$1"
}
# su_sql SQL: as a superuser who switches the triggers off first.
su_sql() { sql "SET session_replication_role = replica; $1"; }

# expect_break WHAT SEQ PROBLEM: both the database and an export of it report
# the first break at SEQ with PROBLEM, and verify exits 1.
expect_break() {
  local what=$1 seq=$2 problem=$3 out rc got
  out=$(kv audit verify --json); rc=$?
  got="$rc $(jq -r '"\(.first_break_seq) \(.problem)"' <<<"$out")"
  if [ "$got" = "1 $seq $problem" ]; then ok "$what: database reports seq $seq $problem"
  else not_ok "$what: database: want 1 $seq $problem, got $got ($out)"; fi
  kv audit export >"$a_var/tampered.jsonl"
  out=$(kv audit verify --file "$a_var/tampered.jsonl" --json); rc=$?
  got="$rc $(jq -r '"\(.first_break_seq) \(.problem)"' <<<"$out")"
  if [ "$got" = "1 $seq $problem" ]; then ok "$what: the export reports the same"
  else not_ok "$what: export: want 1 $seq $problem, got $got ($out)"; fi
}

expect_intact() {
  local out
  out=$(kv audit verify --json)
  check "$1" [ "$?/$(jq -r .chain_ok <<<"$out")" = "0/true" ]
}

# ---- an empty chain, usage -------------------------------------------------

out=$(kv audit head)
check "head of an empty chain: no events, genesis hash" grep -q "no events yet; chain starts at 0\{64\}" <<<"$out"
expect_intact "an empty chain verifies"
for args in "" "nonsense" "head --file x" "verify --org default --file x" "append" \
            "append --action a --outcome maybe" "append --action a --args [1]" \
            "append --action a --count 0" "head --org a --org b" "head extra"; do
  # shellcheck disable=SC2086
  kv audit $args >/dev/null 2>&1
  check "kvmgate audit $args: usage error, exit 2" [ $? = 2 ]
done
kv audit append --org nosuch --action x >/dev/null 2>&1
check "append to an unknown organisation fails" [ $? = 1 ]

# ---- 8 clients, 2,000 events -------------------------------------------------

t0=$(date +%s%N)
pids=()
for i in 1 2 3 4 5 6 7 8; do
  kv audit append --action load.test --count 250 \
     --args "{\"client\":$i,\"text\":\"echo client $i\",\"password\":\"pw-$i-secret\"}" \
     >"$a_var/client$i.out" 2>&1 &
  pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
diag "8 clients appended 2000 events in $ms ms ($(( 2000000 / (ms > 0 ? ms : 1) )) events/s)"
check "all 8 clients appended without an error" [ "$fails" = 0 ]
check "2000 events, seq 1..2000, no gap, no repeat" \
  [ "$(sql "SELECT count(*) || ' ' || min(seq) || ' ' || max(seq) || ' ' || count(DISTINCT seq) FROM audit_events")" = "2000 1 2000 2000" ]
check "250 events from each client" \
  [ "$(sql "SELECT count(*) || ' ' || min(n) || ' ' || max(n) FROM (SELECT count(*) n FROM audit_events GROUP BY args->>'client') t")" = "8 250 250" ]
check "every prev_hash is the previous row's hash" \
  [ "$(sql "SELECT count(*) FROM (SELECT prev_hash, lag(row_hash) OVER (ORDER BY seq) AS want, seq FROM audit_events) t WHERE seq > 1 AND prev_hash <> want")" = 0 ]
check "seq order is time order" \
  [ "$(sql "SELECT count(*) FROM (SELECT occurred_at < lag(occurred_at) OVER (ORDER BY seq) AS back FROM audit_events) t WHERE back")" = 0 ]
check "passwords redacted, typed text kept" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE args->>'password' = '[redacted]' AND args->>'text' LIKE 'echo client _'")" = 2000 ]
check "no secret in any stored byte" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE position('secret' IN convert_from(canon, 'UTF8')) > 0 OR args::text LIKE '%secret%'")" = 0 ]
check "the CLI is recorded as actor and client" \
  [ "$(sql "SELECT DISTINCT actor_kind || ' ' || client_kind || ' ' || client_name FROM audit_events")" = "cli cli kvmgate" ]

t0=$(date +%s%N)
out=$(kv audit verify); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
diag "verified 2000 events in $ms ms"
check "the chain of 2000 verifies: exit 0, OK" [ "$rc/$(head -n1 <<<"$out")" = "0/OK 2000 event(s) verified (org default)" ]
vj=$(kv audit verify --json)
hj=$(kv audit head --json)
check "verify --json: intact, 2000 checked, no break" \
  [ "$(jq -r '"\(.chain_ok) \(.events_checked) \(.first_break_seq) \(.head_seq)"' <<<"$vj")" = "true 2000 null 2000" ]
check "head --json agrees with verify" \
  [ "$(jq -r '"\(.seq) \(.hash)"' <<<"$hj")" = "$(jq -r '"\(.head_seq) \(.chain_head)"' <<<"$vj")" ]
check "head --json carries the time of the last event" grep -qE '"time":"20[0-9-]{8}T[0-9:.]{15}Z"' <<<"$hj"

kv audit export >"$a_var/intact.jsonl"
check "export: header, 2000 events, trailer" [ "$(wc -l <"$a_var/intact.jsonl")" = 2002 ]
fj=$(kv audit verify --file "$a_var/intact.jsonl" --json)
check "the export verifies offline with the same head" \
  [ "$(jq -r '"\(.chain_ok) \(.events_checked) \(.chain_head)"' <<<"$fj")" = "$(jq -r '"\(.chain_ok) \(.events_checked) \(.chain_head)"' <<<"$vj")" ]
check "the export verifies from a pipe too" \
  bash -c "cat '$a_var/intact.jsonl' | KVMGATE_VAR_DIR='$a_var' '$bin/kvmgate' audit verify --file - >/dev/null"
check "an export line's canon hashes to its row_hash" \
  [ "$(sed -n 2p "$a_var/intact.jsonl" | jq -j .canon | { head -c 32 /dev/zero; cat; } | sha256sum | cut -c1-64)" = "$(sed -n 2p "$a_var/intact.jsonl" | jq -r .row_hash)" ]

# ---- one chain per organisation ----------------------------------------------

sql "INSERT INTO organisations (name) VALUES ('other')"
out=$(kv audit append --org other --action note --reason "first of its own")
check "another organisation starts its own chain at seq 1" grep -q "recorded as seq 1$" <<<"$out"
out=$(kv audit verify --org other --json)
check "the other chain verifies on its own" [ "$(jq -r '"\(.chain_ok) \(.events_checked)"' <<<"$out")" = "true 1" ]
expect_intact "the first chain is untouched"

# ---- the append-only guard ---------------------------------------------------

for stmt in "UPDATE audit_events SET reason = 'x' WHERE seq = 5" "DELETE FROM audit_events WHERE seq = 5" \
            "TRUNCATE audit_events" "INSERT INTO audit_anchors VALUES (1, 0, decode(repeat('00', 32), 'hex')); UPDATE audit_anchors SET seq = 9" \
            "DELETE FROM audit_anchors"; do
  out=$(sql "$stmt" 2>&1)
  check "refused: $stmt" grep -q "is append-only" <<<"$out"
done
check "nothing changed" [ "$(sql "SELECT count(*) FROM audit_events WHERE org_id = 1")/$(sql "SELECT count(*) FROM audit_anchors")" = "2000/0" ]
out=$(sql "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT o_seq FROM audit_append(1, '{\"action\":\"x\"}'); COMMIT" 2>&1)
check "an append outside READ COMMITTED is refused" grep -q "needs READ COMMITTED" <<<"$out"
out=$(sql "SELECT o_seq FROM audit_append(1, '{\"action\":\"café\"}')" 2>&1)
check "a body that is not canonical ASCII is refused" grep -q "canonical JSON object" <<<"$out"

# ---- tampering ---------------------------------------------------------------

# One byte of one canon.
saved=$(sql "SELECT encode(canon, 'hex') FROM audit_events WHERE org_id = 1 AND seq = 1234")
su_sql "UPDATE audit_events SET canon = set_byte(canon, 60, get_byte(canon, 60) # 1) WHERE org_id = 1 AND seq = 1234"
expect_break "one byte of seq 1234 changed" 1234 hash_mismatch
su_sql "UPDATE audit_events SET canon = decode('$saved', 'hex') WHERE org_id = 1 AND seq = 1234"
expect_intact "restored, the chain verifies again"

# One row deleted.
su_sql "CREATE TABLE saved AS SELECT * FROM audit_events WHERE org_id = 1 AND seq = 777;
        DELETE FROM audit_events WHERE org_id = 1 AND seq = 777"
expect_break "seq 777 deleted" 777 gap
su_sql "INSERT INTO audit_events OVERRIDING SYSTEM VALUE SELECT * FROM saved; DROP TABLE saved"
expect_intact "re-inserted, the chain verifies again"

# forged_insert NEW SRC PREV [TABLE]: inserts a forgery of event SRC (read from
# TABLE, default audit_events) with "echo client" made "rm -rf /", numbered NEW
# and chained to event PREV, every hash and column computed correctly: what a
# careful forger with superuser rights writes.
forged_insert() {
  su_sql "INSERT INTO audit_events (org_id, seq, occurred_at, action, actor_kind, actor_user, client_kind,
            client_name, client_version, outcome, args, canon, prev_hash, row_hash)
          SELECT e.org_id, $1, e.occurred_at, e.action, e.actor_kind, e.actor_user, e.client_kind,
            e.client_name, e.client_version, e.outcome, convert_from(f.c, 'UTF8')::jsonb -> 'body' -> 'args',
            f.c, p.row_hash, sha256(p.row_hash || f.c)
          FROM ${4:-audit_events} e, audit_events p,
            LATERAL (SELECT convert_to(replace(replace(convert_from(e.canon, 'UTF8'),
                       'echo client', 'rm -rf /'), ',\"seq\":$2,', ',\"seq\":$1,'), 'UTF8') AS c) f
          WHERE e.org_id = 1 AND e.seq = $2 AND p.org_id = 1 AND p.seq = $3"
}

# One row replaced by a forgery that chains and hashes correctly.
su_sql "CREATE TABLE saved AS SELECT * FROM audit_events WHERE org_id = 1 AND seq = 1500;
        DELETE FROM audit_events WHERE org_id = 1 AND seq = 1500"
forged_insert 1500 1500 1499 saved
check "the forged seq 1500 is in place" \
  [ "$(sql "SELECT args->>'text' FROM audit_events WHERE org_id = 1 AND seq = 1500")" = "rm -rf / $(sql "SELECT args->>'client' FROM saved")" ]
expect_break "seq 1500 replaced by a consistent forgery" 1500 replaced
su_sql "DELETE FROM audit_events WHERE org_id = 1 AND seq = 1500;
        INSERT INTO audit_events OVERRIDING SYSTEM VALUE SELECT * FROM saved; DROP TABLE saved"
expect_intact "the original seq 1500 back, the chain verifies again"

# A forged row inserted beside seq 900: the unique keys refuse it; a superuser
# who drops them gets it in, and verification finds the fork.
out=$(forged_insert 900 900 899 2>&1)
check "the unique keys refuse a second seq 900" grep -q "duplicate key" <<<"$out"
# The value rules (domains) refuse what no writer produces, superuser or not.
n0=$(sql "SELECT count(*) FROM audit_events")
for bad in "seq=0" "actor_kind='nobody'" "client_kind='telnet'" "outcome='maybe'" \
           "prev_hash='\\x00'::bytea" "row_hash=sha224('x')"; do
  declare -A row=([seq]=9000 [actor_kind]="'cli'" [client_kind]="'cli'" [outcome]="'ok'"
                  [prev_hash]="sha256('a')" [row_hash]="sha256('b')")
  row[${bad%%=*}]=${bad#*=}
  out=$(su_sql "INSERT INTO audit_events (org_id, seq, occurred_at, action, actor_kind, client_kind,
                  outcome, canon, prev_hash, row_hash)
                VALUES (1, ${row[seq]}, now(), 'x', ${row[actor_kind]}, ${row[client_kind]},
                  ${row[outcome]}, '{}', ${row[prev_hash]}, ${row[row_hash]})" 2>&1 || true)
  check "a row with $bad is refused by its column's rule" \
    grep -qE "value for domain audit_[a-z_]+ violates check constraint" <<<"$out"
done
check "none of them was stored" [ "$(sql "SELECT count(*) FROM audit_events")" = "$n0" ]
su_sql "ALTER TABLE audit_events DROP CONSTRAINT audit_events_org_id_seq_key,
                                 DROP CONSTRAINT audit_events_org_id_prev_hash_key"
forged_insert 900 900 899
check "two rows claim seq 900" [ "$(sql "SELECT count(*) FROM audit_events WHERE org_id = 1 AND seq = 900")" = 2 ]
expect_break "a forged row inserted as seq 900" 900 fork
su_sql "DELETE FROM audit_events WHERE org_id = 1 AND seq = 900 AND args->>'text' LIKE 'rm -rf%'"
# A forged row at the end that chains to an old event.
forged_insert 2001 11 10
check "a forged seq 2001 is in place" [ "$(sql "SELECT max(seq) FROM audit_events WHERE org_id = 1")" = 2001 ]
expect_break "a forged seq 2001 chained to seq 10" 2001 fork
su_sql "DELETE FROM audit_events WHERE org_id = 1 AND seq = 2001;
        ALTER TABLE audit_events ADD CONSTRAINT audit_events_org_id_seq_key UNIQUE (org_id, seq),
                                 ADD CONSTRAINT audit_events_org_id_prev_hash_key UNIQUE (org_id, prev_hash)"
expect_intact "forgeries removed, keys back, the chain verifies again"

# A queryable column edited, canon left alone: the database sees it; the
# export holds canon only and stays intact (canon is the truth).
su_sql "UPDATE audit_events SET outcome = 'denied' WHERE org_id = 1 AND seq = 42"
out=$(kv audit verify --json)
check "an edited column is reported at seq 42" \
  [ "$(jq -r '"\(.first_break_seq) \(.problem)"' <<<"$out")" = "42 column_mismatch" ]
check "the report names the column" grep -q "column outcome" <<<"$(jq -r .detail <<<"$out")"
kv audit export >"$a_var/column.jsonl"
check "the export of canon stays intact" quiet kv audit verify --file "$a_var/column.jsonl"
su_sql "UPDATE audit_events SET outcome = 'ok' WHERE org_id = 1 AND seq = 42"
su_sql "UPDATE audit_events SET args = args || '{\"n\": 1e300}' WHERE org_id = 1 AND seq = 43"
out=$(kv audit verify --json)
check "an edited args column is reported at seq 43" \
  [ "$(jq -r '"\(.first_break_seq) \(.problem)"' <<<"$out")" = "43 column_mismatch" ]
su_sql "UPDATE audit_events SET args = args - 'n' WHERE org_id = 1 AND seq = 43"
expect_intact "columns restored, the chain verifies again"

# ---- checkpoints ---------------------------------------------------------------

out=$(kv audit checkpoint)
check "checkpoint recorded as seq 2001, signing seq 2000" grep -q "recorded as seq 2001, signing seq 2000" <<<"$out"
check "the signing key was created with mode 0600" [ "$(stat -c %a "$a_var/audit-ed25519.pem")" = 600 ]
out=$(kv audit checkpoint)
check "a second checkpoint with nothing new is skipped" grep -q "already a checkpoint" <<<"$out"
kv audit append --action note --args '{"text":"between checkpoints"}' >/dev/null
out=$(kv audit checkpoint --all --json)
check "checkpoint --all signs every organisation" \
  [ "$(jq -sr 'map("\(.org):\(.seq):\(.skipped)") | join(" ")' <<<"$out")" = "default:2003:false other:2:false" ]
check "the checkpoint event carries origin, size, head, key and signature" \
  [ "$(sql "SELECT (args->>'size') || ' ' || (args->>'origin') || ' ' || (args->>'head' = encode(prev_hash, 'hex'))::text || ' ' || length(args->>'signature') FROM audit_events WHERE org_id = 1 AND seq = 2001")" = "2000 kvmgate/audit/org/1 true 128" ]
kv audit pubkey >"$a_var/pub.hex"
check "audit pubkey prints the key in hex" grep -qE '^[0-9a-f]{64}$' "$a_var/pub.hex"
out=$(kv audit verify)
check "checkpoints verified, key not pinned" grep -q "checkpoints: 2 signature(s) verified, last at seq 2003, key [0-9a-f]\{8\} (not pinned" <<<"$out"
out=$(kv audit verify --pubkey "$a_var/pub.hex" --json)
check "verify --pubkey: intact and pinned" [ "$(jq -r '"\(.chain_ok) \(.pubkey_pinned) \(.checkpoints_verified)"' <<<"$out")" = "true true 2" ]
kv audit export >"$a_var/signed.jsonl"
check "the export verifies offline against the pinned key" \
  quiet kv audit verify --file "$a_var/signed.jsonl" --pubkey "$a_var/audit-ed25519.pem"
openssl genpkey -algorithm ed25519 -out "$a_var/other.pem" 2>/dev/null
out=$(kv audit verify --pubkey "$a_var/other.pem" --json)
check "pinned to another key: the first checkpoint is refused" \
  [ "$(jq -r '"\(.first_break_seq) \(.problem)"' <<<"$out")" = "2001 checkpoint_invalid" ]

# Someone with database rights and a key of their own signs a checkpoint:
# it verifies unpinned (the key is in the event), not against the pinned key.
chmod 600 "$a_var/other.pem"
KVMGATE_AUDIT_KEY_FILE=$a_var/other.pem kv audit append --action note >/dev/null
KVMGATE_AUDIT_KEY_FILE=$a_var/other.pem kv audit checkpoint >/dev/null
out=$(kv audit verify --json)
check "a checkpoint by another key verifies unpinned, flagged as a key change" \
  [ "$(jq -r '"\(.chain_ok) \(.checkpoint_keys_differ)"' <<<"$out")" = "true true" ]
out=$(kv audit verify --pubkey "$a_var/pub.hex" --json)
check "pinned, the other key's checkpoint is reported" \
  [ "$(jq -r '"\(.first_break_seq) \(.problem)"' <<<"$out")" = "2005 checkpoint_invalid" ]

# One signature digit changed, with the chain from there rewritten so every
# hash and column agrees: only the signature check can see it.
su_sql "DO \$\$
DECLARE r record; prev bytea; c bytea; p int;
BEGIN
  SELECT row_hash INTO prev FROM audit_events WHERE org_id = 1 AND seq = 2000;
  FOR r IN SELECT id, seq, canon FROM audit_events WHERE org_id = 1 AND seq > 2000 ORDER BY seq LOOP
    c := r.canon;
    IF r.seq = 2001 THEN
      p := position('\"signature\":\"'::bytea IN c) + 12;
      c := set_byte(c, p, CASE WHEN get_byte(c, p) = 48 THEN 49 ELSE 48 END);
    END IF;
    UPDATE audit_events SET canon = c, prev_hash = prev, row_hash = sha256(prev || c),
           args = convert_from(c, 'UTF8')::jsonb -> 'body' -> 'args' WHERE id = r.id;
    prev := sha256(prev || c);
  END LOOP;
END \$\$"
expect_break "a checkpoint signature altered, chain rewritten" 2001 checkpoint_invalid

# ---- the appender's batch: organisations interleaved ----------------------------

# What the audit appender sends: events it linked itself (seq, time, hash
# from the heads it knows), here two organisations interleaved. test_link
# links a batch the way the appender does, from the stored heads; the
# tests then spoil one part at a time.
other=$(sql "SELECT id FROM organisations WHERE name = 'other'")
third=$(sql "INSERT INTO organisations (name) VALUES ('third') RETURNING id")
# A real body: the first event's of the other organisation, as it was hashed.
b=$(sql "SELECT substring(convert_from(canon, 'UTF8') from '^[{]\"body\":(.*),\"org\":[0-9]+,\"seq\":') FROM audit_events WHERE org_id = $other AND seq = 1")
sql "CREATE FUNCTION test_link(p_orgs bigint[], p_body text, OUT o bigint[], OUT s bigint[],
       OUT t text[], OUT b text[], OUT p bytea[], OUT h bytea[]) LANGUAGE plpgsql AS \$f\$
DECLARE
  seqs jsonb := '{}'; hashes jsonb := '{}'; org bigint; n bigint; prev bytea; ts text; c bytea;
BEGIN
  o := '{}'; s := '{}'; t := '{}'; b := '{}'; p := '{}'; h := '{}';
  FOREACH org IN ARRAY p_orgs LOOP
    IF NOT seqs ? org::text THEN
      SELECT coalesce(max(x.seq), 0) INTO n FROM audit_events x WHERE x.org_id = org;
      SELECT coalesce((SELECT x.row_hash FROM audit_events x WHERE x.org_id = org AND x.seq = n),
                      decode(repeat('00', 32), 'hex')) INTO prev;
    ELSE
      n := (seqs->>org::text)::bigint;
      prev := decode(hashes->>org::text, 'hex');
    END IF;
    n := n + 1;
    ts := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"');
    c := convert_to('{\"body\":' || p_body || ',\"org\":' || org || ',\"seq\":' || n ||
                    ',\"ts\":\"' || ts || '\",\"v\":1}', 'UTF8');
    o := o || org; s := s || n; t := t || ts; b := b || p_body; p := p || prev;
    h := h || sha256(prev || c);
    seqs := seqs || jsonb_build_object(org::text, n);
    hashes := hashes || jsonb_build_object(org::text, encode(sha256(prev || c), 'hex'));
  END LOOP;
END \$f\$" >/dev/null
other_seq=$(sql "SELECT max(seq) FROM audit_events WHERE org_id = $other")
link="test_link(ARRAY[$other, $third, $other]::bigint[], \$b\$$b\$b\$)"
out=$(sql "SELECT audit_insert_many(o, s, t, b, p, h) FROM $link" 2>&1)
check "a mixed batch is appended whole" [ "$out" = 3 ]
check "each event numbered in its own chain, in order" \
  [ "$(sql "SELECT string_agg(org_id || ':' || seq, ' ' ORDER BY occurred_at) FROM (SELECT * FROM audit_events WHERE org_id IN ($other, $third) ORDER BY occurred_at DESC LIMIT 3) x")" = "$other:$((other_seq + 1)) $third:1 $other:$((other_seq + 2))" ]
third_n() { sql "SELECT count(*) FROM audit_events WHERE org_id = $third"; }
# refused: the batch is spoiled one way at a time, and nothing of it stays.
refused() {
  local what=$1 expr=$2 out
  out=$(sql "SELECT audit_insert_many($expr) FROM test_link(ARRAY[$third, $third]::bigint[], \$b\$$b\$b\$)" 2>&1)
  check "refused: $what" grep -q "not a valid link\|different lengths\|invalid input syntax" <<<"$out"
  check "nothing of it stays: $what" [ "$(third_n)" = 1 ]
}
refused "a hash that is not SHA-256(prev || canon)" "o, s, t, b, p, array[h[1], sha256(h[2])]"
refused "the second event not linked to the first" "o, s, t, b, array[p[1], p[1]], h"
refused "a seq skipped" "o, array[s[1], s[2] + 1], t, b, p, h"
refused "a time not in canonical form" "o, s, array[t[1], replace(t[2], 'T', ' ')], b, p, h"
refused "a body that is not JSON" "o, s, t, array[b[1], 'not json'], p, h"
refused "arrays of different lengths" "o, s, t, b[1:1], p, h"
out=$(sql "SELECT audit_insert_many(o, array[s[1] - 1], t, b, array[decode(repeat('00', 32), 'hex')], h) FROM test_link(ARRAY[$third]::bigint[], \$b\$$b\$b\$)" 2>&1)
check "a batch behind the head (another writer appended) inserts nothing and says 0" [ "$out" = 0 ]
check "and nothing of it stays" [ "$(third_n)" = 1 ]
out=$(kv audit verify --org other --json)
check "the other chain verifies after the batch" [ "$(jq -r '"\(.chain_ok) \(.events_checked)"' <<<"$out")" = "true $((other_seq + 2))" ]
out=$(kv audit verify --org third --json)
check "the third chain verifies after the batch" [ "$(jq -r '"\(.chain_ok) \(.events_checked)"' <<<"$out")" = "true 1" ]

# The appender keeps the heads it linked; another writer moving one (the
# CLI here) costs it one more read of the heads, not a failed batch.
new_stack i || { not_ok "a second stack starts"; exit 1; }
rest() { curl -s -o /dev/null "$i_url/api/v1/devices" -H "Authorization: Bearer $i_token"; }
rest
KVMGATE_VAR_DIR=$i_var "$bin/kvmgate" audit append --action interleaved --count 2 >/dev/null
rest; rest; rest
check "appender and CLI interleaved: every event in the chain, in order" \
  [ "$(stack_sql "$i_var" "SELECT string_agg(action, ',' ORDER BY seq) FROM audit_events WHERE action <> 'GET /api/v1/me'")" = "GET /api/v1/devices,interleaved,interleaved,GET /api/v1/devices,GET /api/v1/devices,GET /api/v1/devices" ]
check "and the appender never fell back to one event at a time" lacks "$(cat "$i_var/log/fcgi.log")" "one by one"
m=$(curl -s "$i_url/metrics")
metric() { awk -v k="$1" '$1 == k { print $2 }' <<<"$m"; }
[ "$(metric kvmgate_audit_batch_events_total)" -ge 4 ] && [ "$(metric kvmgate_audit_batches_total)" -ge 1 ] &&
  [ "$(metric kvmgate_audit_batches_total)" -le "$(metric kvmgate_audit_batch_events_total)" ] &&
  [ "$(metric kvmgate_audit_batch_failures_total)" = 0 ]
check "metrics: the appender's batches carried the four REST calls' events, none failed" [ $? = 0 ]
check "metrics: the appender's time writing its batches is counted" \
  awk -v t="$(metric kvmgate_audit_batch_seconds_total)" 'BEGIN { exit !(t > 0 && t < 60) }'
check "metrics: the workers' waits for their commits are counted" \
  [ "$(metric kvmgate_audit_wait_seconds_count)" -ge 4 ]
out=$(KVMGATE_VAR_DIR=$i_var "$bin/kvmgate" audit verify --json)
check "the chain verifies after the interleaving" [ "$(jq -r .chain_ok <<<"$out")" = true ]

# ---- periodic checkpoints ------------------------------------------------------

# The appender signs each organisation's head on its own, and only when
# there is something new since the last checkpoint.
KVMGATE_AUDIT_CHECKPOINT_S=1 new_stack p || { not_ok "a stack with 1 s checkpoints starts"; exit 1; }
curl -s -o /dev/null "$p_url/api/v1/devices" -H "Authorization: Bearer $p_token"
psql_p() { stack_sql "$p_var" "$1"; }
for _ in $(seq 50); do
  [ "$(psql_p "SELECT count(*) FROM audit_events WHERE action = 'audit.checkpoint'")" -ge 1 ] && break
  sleep 0.1
done
check "a periodic checkpoint is recorded by the system" \
  [ "$(psql_p "SELECT actor_kind || ' ' || client_name FROM audit_events WHERE action = 'audit.checkpoint' ORDER BY seq LIMIT 1")" = "system kvmgate-audit" ]
sleep 2.5
check "nothing new, no second checkpoint" \
  [ "$(psql_p "SELECT count(*) FROM audit_events WHERE action = 'audit.checkpoint'")" = 1 ]
out=$(KVMGATE_VAR_DIR=$p_var "$bin/kvmgate" audit verify --json)
check "the periodic checkpoint verifies" \
  [ "$(jq -r '"\(.chain_ok) \(.checkpoints_verified)"' <<<"$out")" = "true 1" ]
