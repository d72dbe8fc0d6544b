#!/usr/bin/env bash
# Rebuild benchmark: `kappa rebuild` of one topic into SQLite and into PostgreSQL, next to a raw
# consumer reading the same topic to the same end offsets with the same consumers and no decoding
# (`kappa rebuild --raw-baseline`, hidden), all in one run against the same broker.
# The topic is filled by `kappa run`'s initial snapshot of a table of N rows (5 columns, ~60-byte
# values), so it holds N records over P partitions. Peak RSS of each run comes from /usr/bin/time;
# a second, 10× smaller topic shows whether memory depends on the topic's size.
# Prints records/s, the ratio to the baseline and max RSS; with --record, appends them to
# bench/RESULTS-rebuild.md together with this command.
# Usage: bench/rebuild.sh [--record] [--rows N] [--partitions P]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
cd "$KAPPA_ROOT"

RECORD=0; ROWS=1000000; PARTITIONS=4
while (($#)); do
  case "$1" in
    --record) RECORD=1 ;;
    --rows) ROWS="$2"; shift ;;
    --partitions) PARTITIONS="$2"; shift ;;
    *) die "unknown argument $1" ;;
  esac
  shift
done
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
REGISTRY="${SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081/apis/ccompat/v7}"
psql_q() { psql "$PG_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }

bash dev/services up >/dev/null
cargo build --quiet --release --bin kappa
cargo build --quiet --release -p kappa-sink --example copy_topic
KAPPA="$KAPPA_ROOT/target/release/kappa"
WORK=$(mktemp -d)
RUN_ID="bench_rb_$$_$(date +%s)"

cleanup() {
  for name in "${RUN_ID}_big" "${RUN_ID}_small"; do
    psql_q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$name' AND NOT active" >/dev/null 2>&1 || true
    psql_q -c "DROP PUBLICATION IF EXISTS $name; DROP TABLE IF EXISTS public.$name, public.${name}_rb" >/dev/null 2>&1 || true
    delete_kafka_topics "$name.public.$name" "$name.public.$name.copy"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Fills a topic from a table of $2 rows through `kappa run`'s initial snapshot; prints the topic.
fill_topic() { # name rows
  local name="$1" rows="$2"
  psql_q <<SQL >/dev/null
CREATE TABLE public.$name (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, flag boolean);
-- text/numeric columns may be TOASTed: kappa refuses DEFAULT identity for them (see README).
ALTER TABLE public.$name REPLICA IDENTITY FULL;
INSERT INTO public.$name SELECT g, 'name ' || g, g / 100.0, timestamptz '2026-01-01' + g * interval '1 second', g % 2 = 0
  FROM generate_series(1, $rows) g;
SQL
  cat > "$WORK/$name.toml" <<TOML
name = "$name"

[source.postgres]
url = "$PG_URL"
tables = ["public.$name"]
slot = "$name"
publication = "$name"

[kafka]
brokers = "$BROKERS"
topic_prefix = "$name"
partitions = $PARTITIONS
offsets_topic = "kappa-bench-offsets"

[schema_registry]
url = "$REGISTRY"
TOML
  "$KAPPA" run --config "$WORK/$name.toml" 2>"$WORK/$name.log" &
  local pid=$! t0
  t0=$(date +%s)
  until grep -q "initial snapshot delivered" "$WORK/$name.log"; do
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "kappa run exited"; }
    sleep 1
  done
  kill -TERM "$pid"; wait "$pid" || true
  info "filled $name.public.$name with $rows records in $(( $(date +%s) - t0 )) s" >&2
  # The broker compacts every compacted topic key by key, all the time: a
  # 1M-record compacted topic keeps it busy during the very reads being
  # timed. So the runs read a non-compacted copy (same keys, values and
  # partitions; the compacted original is deleted), whose subjects are
  # registered with the same schemas.
  local topic="$name.public.$name" copy="$name.public.$name.copy" copied subject
  copied=$("$KAPPA_ROOT/target/release/examples/copy_topic" "$BROKERS" "$topic" "$copy")
  [[ "$copied" == "$rows" ]] || die "copied $copied records of $topic, expected $rows"
  for subject in key value; do
    curl -sf "$REGISTRY/subjects/$topic-$subject/versions/latest" \
      | python3 -c 'import json,sys; print(json.dumps({"schema": json.load(sys.stdin)["schema"]}))' \
      | curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data @- \
          "$REGISTRY/subjects/$copy-$subject/versions" >/dev/null \
      || die "registering the schemas of $copy"
  done
  echo "$copy"
}

# Runs a command under /usr/bin/time; prints "<stdout> <max RSS in MB>".
timed() {
  local out
  out=$(/usr/bin/time -f '%M' -o "$WORK/rss" "$@")
  echo "$out $(( $(cat "$WORK/rss") / 1024 ))"
}

rate_of() { # the records_per_second of a JSON summary
  python3 -c 'import json,sys; print(round(json.load(sys.stdin)["records_per_second"]))'
}

section "filling topics ($ROWS and $((ROWS / 10)) records, $PARTITIONS partitions)"
BIG=$(fill_topic "${RUN_ID}_big" "$ROWS")
SMALL=$(fill_topic "${RUN_ID}_small" "$((ROWS / 10))")

baseline() { # topic → "records/s rss"
  local line
  line=$(timed "$KAPPA" rebuild --topic "$1" --into sqlite:/dev/null --raw-baseline --brokers "$BROKERS")
  # "raw read of T: N records, S s, R records/s RSS"
  echo "$line" | awk '{print $(NF-2), $NF}'
}

rebuild_rate() { # topic into → "records/s rss"
  local line json rss
  line=$(timed "$KAPPA" rebuild --topic "$1" --into "$2" --format json --brokers "$BROKERS" --registry "$REGISTRY")
  rss=${line##* }; json=${line% *}
  echo "$(echo "$json" | rate_of) $rss"
}

section "rebuilds of $BIG"
read -r RAW1 RAW1_RSS < <(baseline "$BIG")
read -r SQLITE SQLITE_RSS < <(rebuild_rate "$BIG" "sqlite:$WORK/big.sqlite")
read -r PG PG_RSS < <(rebuild_rate "$BIG" "$PG_URL?table=public.${RUN_ID}_big_rb")
read -r RAW2 RAW2_RSS < <(baseline "$BIG")
read -r SMALL_SQLITE SMALL_RSS < <(rebuild_rate "$SMALL" "sqlite:$WORK/small.sqlite")
RAW=$(( (RAW1 + RAW2) / 2 ))

RESULT=$(mktemp)
{
  printf '| run | records | records/s | ratio to raw read | max RSS |\n|---|---|---|---|---|\n'
  printf '| raw read (no decoding), before | %d | %d | 1.00× | %d MB |\n' "$ROWS" "$RAW1" "$RAW1_RSS"
  printf '| rebuild into SQLite | %d | %d | %.2f× | %d MB |\n' "$ROWS" "$SQLITE" "$(echo "$SQLITE / $RAW" | bc -l)" "$SQLITE_RSS"
  printf '| rebuild into PostgreSQL | %d | %d | %.2f× | %d MB |\n' "$ROWS" "$PG" "$(echo "$PG / $RAW" | bc -l)" "$PG_RSS"
  printf '| raw read (no decoding), after | %d | %d | — | %d MB |\n' "$ROWS" "$RAW2" "$RAW2_RSS"
  printf '| rebuild into SQLite, 10× smaller topic | %d | %d | — | %d MB |\n' "$((ROWS / 10))" "$SMALL_SQLITE" "$SMALL_RSS"
} > "$RESULT"
section "results (ratio against the mean of both raw reads, $RAW records/s)"
cat "$RESULT"
if ((RECORD)); then
  {
    printf '\n## %s — rebuild: `bench/rebuild.sh --rows %s --partitions %s`\n\n' "$(date -u +%Y-%m-%d)" "$ROWS" "$PARTITIONS"
    printf 'Machine: %s cores, shared. One topic of %s records over %s partitions (written by `kappa run`'"'"'s snapshot),\n' "$(nproc)" "$ROWS" "$PARTITIONS"
    printf 'read by each run in turn through the same broker (Apache Kafka); ratios against the mean raw read (%s records/s).\n\n' "$RAW"
    cat "$RESULT"
  } >> bench/RESULTS-rebuild.md
fi
