#!/usr/bin/env bash
# Big-transaction memory benchmark: peak RSS of kappa's PostgreSQL reader (full decode into typed
# changes, handed over in bounded pieces, null sink; source/examples/null_sink.rs) while it
# streams one huge transaction, next to pg_recvlogical's peak RSS on the same WAL.
#   case 1: 1,000,000 narrow rows in one transaction
#   case 2: one transaction of about 1 GB (rows of 10 kB of incompressible text)
# The goal is RSS < 64 MB whatever the transaction size: protocol v1 makes the walsender spill
# the transaction to its own disk and send it at commit; kappa holds one piece at a time.
# Usage: bench/pg_bigtx.sh [--record] [--rows N] [--megabytes M]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS=1000000; MEGABYTES=1024
bench_args "ROWS MEGABYTES" "$@"

bash dev/services up >/dev/null
cargo build --quiet --release --example null_sink -p kappa-source
READER="$KAPPA_ROOT/target/release/examples/null_sink"

setup() { slot_pair_setup bench_bigtx "$1"; }
teardown() { slot_pair_teardown bench_bigtx; }
trap teardown EXIT

RESULT=$(mktemp)
printf '| case | rows | WAL MB | kappa reader peak RSS MB | kappa rows/s | pg_recvlogical peak RSS MB | pg_recvlogical rows/s |\n|---|---|---|---|---|---|---|\n' > "$RESULT"

measure() { # label rows start_lsn end_lsn
  local label="$1" rows="$2" start="$3" end="$4" t0 t1 recv_s recv_kb line ours_rows ours_s ours_kb wal_mb
  wal_mb=$(psql_q -c "SELECT round(('$end'::pg_lsn - '$start'::pg_lsn) / 1048576.0)")
  t0=$(date +%s.%N)
  recv_kb=$( { /usr/bin/time -f '%M' pg_recvlogical -d "$PG_URL" --slot bench_bigtx_recv --start --endpos "$end" \
    -o proto_version=1 -o publication_names=bench_bigtx -f /dev/null; } 2>&1 | tail -n 1)
  t1=$(date +%s.%N)
  recv_s=$(echo "$t1 - $t0" | bc -l)
  line=$( { /usr/bin/time -f 'rss %M' "$READER" "$PG_URL" bench_bigtx_ours bench_bigtx public.bench_bigtx "$end"; } 2>&1)
  read -r ours_rows ours_s <<<"$(grep -v '^rss ' <<<"$line" | tail -n 1)"
  ours_kb=$(sed -n 's/^rss //p' <<<"$line")
  [ "$ours_rows" = "$rows" ] || die "$label: kappa's reader decoded $ours_rows rows, expected $rows ($line)"
  printf '| %s | %d | %s | %.1f | %.0f | %.1f | %.0f |\n' "$label" "$rows" "$wal_mb" \
    "$(echo "$ours_kb / 1024" | bc -l)" "$(echo "$rows / $ours_s" | bc -l)" \
    "$(echo "$recv_kb / 1024" | bc -l)" "$(echo "$rows / $recv_s" | bc -l)" | tee -a "$RESULT"
}

section "case 1: $ROWS narrow rows in one transaction"
setup "id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, flag boolean"
START=$(psql_q -c "SELECT pg_current_wal_lsn()")
psql_q -c "INSERT INTO public.bench_bigtx SELECT g, 'name ' || g, g / 100.0, now(), g % 2 = 0 FROM generate_series(1, $ROWS) g"
END=$(psql_q -c "SELECT pg_current_wal_lsn()")
measure "1 transaction of $ROWS rows" "$ROWS" "$START" "$END"

WIDE_ROWS=$((MEGABYTES * 100))
section "case 2: one transaction of about $MEGABYTES MB ($WIDE_ROWS rows of 10 kB)"
# STORAGE EXTERNAL: stored out of line uncompressed, so the WAL holds the full megabytes.
setup "id bigint PRIMARY KEY, pad text"
psql_q -c "ALTER TABLE public.bench_bigtx ALTER COLUMN pad SET STORAGE EXTERNAL"
START=$(psql_q -c "SELECT pg_current_wal_lsn()")
psql_q -c "INSERT INTO public.bench_bigtx SELECT g, (SELECT string_agg(md5((g * 1000 + i)::text), '') FROM generate_series(1, 320) i) FROM generate_series(1, $WIDE_ROWS) g"
END=$(psql_q -c "SELECT pg_current_wal_lsn()")
measure "1 transaction of ~$MEGABYTES MB" "$WIDE_ROWS" "$START" "$END"

record_results "Machine: $(nproc) cores, $(psql_q -c 'SELECT version()' | cut -d, -f1). Peak RSS from /usr/bin/time (max resident set), same WAL, two slots." "$(cat "$RESULT")"
