#!/usr/bin/env bash
# Snapshot benchmark: kappa's snapshot path (COPY text parsed into typed rows, in chunks, null
# sink; source/examples/snapshot_null_sink.rs) next to `COPY table TO STDOUT` piped to /dev/null,
# on the same table in the same run. Goal: ≥ 0.7×.
# Usage: bench/pg_snapshot.sh [--record] [--rows N]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS=1000000
bench_args "ROWS" "$@"
bash dev/services up >/dev/null
cargo build --quiet --release --example snapshot_null_sink -p kappa-source
READER="$KAPPA_ROOT/target/release/examples/snapshot_null_sink"

psql_q <<SQL
DROP TABLE IF EXISTS public.bench_snapshot;
CREATE TABLE public.bench_snapshot (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, flag boolean);
INSERT INTO public.bench_snapshot SELECT g, 'name ' || g, g / 100.0, now(), g % 2 = 0 FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE public.bench_snapshot;
SQL
# Warm the cache once, then measure each side.
psql_q -c "COPY public.bench_snapshot TO STDOUT" > /dev/null
t0=$(date +%s.%N)
psql_q -c "COPY public.bench_snapshot TO STDOUT" > /dev/null
t1=$(date +%s.%N)
copy_s=$(echo "$t1 - $t0" | bc -l)
line=$("$READER" "$PG_URL" public.bench_snapshot)
ours_rows=${line% *}; ours_s=${line#* }
[ "$ours_rows" = "$ROWS" ] || die "kappa's snapshot read $ours_rows rows, expected $ROWS"
copy_rate=$(echo "$ROWS / $copy_s" | bc -l); ours_rate=$(echo "$ROWS / $ours_s" | bc -l)
ratio=$(echo "$ours_rate / $copy_rate" | bc -l)
RESULT=$(printf '| case | rows | kappa snapshot rows/s | COPY TO STDOUT rows/s | ratio |\n|---|---|---|---|---|\n| snapshot of a %d-row table | %d | %.0f | %.0f | %.2f× |\n' "$ROWS" "$ROWS" "$ours_rate" "$copy_rate" "$ratio")
record_results "Machine: $(nproc) cores; same table, same run, cache warm." "$RESULT"
psql_q -c "DROP TABLE IF EXISTS public.bench_snapshot" >/dev/null
