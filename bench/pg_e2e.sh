#!/usr/bin/env bash
# End to end into the broker: `kappa run` snapshots an N-row table into its topic (read, encode,
# register, produce, await acknowledgements) — records/s from start to "initial snapshot
# delivered" — next to a plain rdkafka producer (sink/examples/raw_produce.rs, kappa's producer
# settings) sending exactly the same encoded bytes through the same broker in the same run.
# Usage: bench/pg_e2e.sh [--record] [--rows N]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS=100000
bench_args "ROWS" "$@"
BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
REGISTRY="${SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081/apis/ccompat/v7}"
bash dev/services up >/dev/null
cargo build --quiet --release --bin kappa --example raw_produce -p kappa -p kappa-sink
RUN="bench_e2e_$(date +%s)"
WORK=$(mktemp -d)
psql_q <<SQL
DROP TABLE IF EXISTS public.bench_e2e;
CREATE TABLE public.bench_e2e (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, flag boolean);
ALTER TABLE public.bench_e2e REPLICA IDENTITY FULL;
INSERT INTO public.bench_e2e SELECT g, 'name ' || g, g / 100.0, now(), g % 2 = 0 FROM generate_series(1, $ROWS) g;
SQL
cat > "$WORK/kappa.toml" <<TOML
name = "$RUN"
[source.postgres]
url = "$PG_URL"
tables = ["public.bench_e2e"]
slot = "$RUN"
publication = "$RUN"
[kafka]
brokers = "$BROKERS"
topic_prefix = "$RUN"
offsets_topic = "$RUN.offsets"
[schema_registry]
url = "$REGISTRY"
TOML
t0=$(date +%s.%N)
target/release/kappa run --config "$WORK/kappa.toml" 2>"$WORK/run.log" &
PID=$!
until grep -q "initial snapshot delivered" "$WORK/run.log"; do
  kill -0 $PID 2>/dev/null || die "kappa run exited: $(tail -3 "$WORK/run.log")"
  sleep 0.05
done
t1=$(date +%s.%N)
kill -TERM $PID; wait $PID || true
ours_s=$(echo "$t1 - $t0" | bc -l)
line=$(target/release/examples/raw_produce "$BROKERS" "$RUN.public.bench_e2e" "$RUN.raw")
raw_rows=${line% *}; raw_s=${line#* }
[ "$raw_rows" = "$ROWS" ] || die "topic holds $raw_rows records, expected $ROWS"
ours_rate=$(echo "$ROWS / $ours_s" | bc -l); raw_rate=$(echo "$ROWS / $raw_s" | bc -l)
ratio=$(echo "$ours_rate / $raw_rate" | bc -l)
RESULT=$(printf '| case | records | kappa run (snapshot → broker) rec/s | plain rdkafka producer, same bytes, rec/s | ratio |\n|---|---|---|---|---|\n| %d-row table | %d | %.0f | %.0f | %.2f× |\n' "$ROWS" "$ROWS" "$ours_rate" "$raw_rate" "$ratio")
record_results "kappa run is timed from process start (connect, topic creation, slot, snapshot, encoding, registry) to the acknowledgement of the last snapshot record; the baseline only produces." "$RESULT"
drop_slots "$RUN"
psql_q -c "DROP PUBLICATION IF EXISTS $RUN; DROP TABLE IF EXISTS public.bench_e2e" >/dev/null
# raw_produce deletes the table topic and its own; the offsets topic is left.
delete_kafka_topics "$RUN.offsets"
rm -rf "$WORK"
