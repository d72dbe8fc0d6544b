#!/usr/bin/env bash
# Streaming reader benchmark: kappa's PostgreSQL reader (full decode into typed changes, null
# sink; source/examples/null_sink.rs) next to `pg_recvlogical -f /dev/null`, both draining the
# SAME WAL through two slots created at the same position, in the same run.
#   case 1: 1,000,000 rows inserted in one transaction
#   case 2: 200,000 single-row transactions
# Prints rows/s for both and the ratio (ours / pg_recvlogical); with --record, appends them to
# bench/RESULTS.md together with this command.
# Usage: bench/pg_stream.sh [--record] [--rows N] [--txns N]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS=1000000; TXNS=200000
bench_args "ROWS TXNS" "$@"

bash dev/services up >/dev/null
cargo build --quiet --release --example null_sink -p kappa-source
READER="$KAPPA_ROOT/target/release/examples/null_sink"

setup() { slot_pair_setup bench_stream "id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, flag boolean"; }
teardown() { slot_pair_teardown bench_stream; }
trap teardown EXIT

measure() { # label rows end_lsn
  local label="$1" rows="$2" end="$3" t0 t1 recv_s ours_line ours_rows ours_s
  t0=$(date +%s.%N)
  pg_recvlogical -d "$PG_URL" --slot bench_stream_recv --start --endpos "$end" \
    -o proto_version=1 -o publication_names=bench_stream -f /dev/null
  t1=$(date +%s.%N)
  recv_s=$(echo "$t1 - $t0" | bc -l)
  ours_line=$("$READER" "$PG_URL" bench_stream_ours bench_stream public.bench_stream "$end")
  ours_rows=${ours_line% *}; ours_s=${ours_line#* }
  [ "$ours_rows" = "$rows" ] || die "$label: kappa's reader decoded $ours_rows rows, expected $rows"
  local recv_rate ours_rate ratio
  recv_rate=$(echo "$rows / $recv_s" | bc -l); ours_rate=$(echo "$rows / $ours_s" | bc -l)
  ratio=$(echo "$ours_rate / $recv_rate" | bc -l)
  printf '| %s | %d | %.0f | %.0f | %.2f× |\n' "$label" "$rows" "$ours_rate" "$recv_rate" "$ratio" | tee -a "$RESULT"
}

RESULT=$(mktemp)
printf '| case | rows | kappa reader rows/s | pg_recvlogical rows/s | ratio |\n|---|---|---|---|---|\n' > "$RESULT"

section "case 1: $ROWS rows in one transaction"
setup
psql_q -c "INSERT INTO public.bench_stream SELECT g, 'name ' || g, g / 100.0, now(), g % 2 = 0 FROM generate_series(1, $ROWS) g"
END=$(psql_q -c "SELECT pg_current_wal_lsn()")
measure "1 transaction of $ROWS rows" "$ROWS" "$END"

section "case 2: $TXNS single-row transactions"
setup
psql_q -c "DO \$\$ BEGIN FOR g IN 1..$TXNS LOOP INSERT INTO public.bench_stream VALUES (g, 'name ' || g, g / 100.0, now(), g % 2 = 0); COMMIT; END LOOP; END \$\$"
END=$(psql_q -c "SELECT pg_current_wal_lsn()")
measure "$TXNS single-row transactions" "$TXNS" "$END"

record_results "Machine: $(nproc) cores, $(psql_q -c 'SELECT version()' | cut -d, -f1). Same WAL, two slots created at the same LSN, run back to back." "$(cat "$RESULT")"
