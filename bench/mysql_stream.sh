#!/usr/bin/env bash
# MySQL/MariaDB reader benchmarks, ratio in one run on the same data:
#   stream:   N rows inserted in batches of 10,000 (one transaction each); kappa's binlog reader
#             (full decode into typed changes, null sink; source/examples/mysql_null_sink.rs) vs
#             `mysqlbinlog --read-from-remote-server` to /dev/null, over the same binlog range.
#   snapshot: kappa's initial snapshot of that table (lock, position, key-ordered typed rows, null
#             sink; source/examples/mysql_snapshot_null_sink.rs) vs `mysqldump --single-transaction`
#             of it to /dev/null.
# Prints rows/s and ratios (ours / baseline); with --record, appends them to bench/RESULTS-mysql.md
# together with this command. Needs the MariaDB of dev/services (127.0.0.1:3306, root).
# Usage: bench/mysql_stream.sh [--record] [--rows N]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
cd "$KAPPA_ROOT"

RECORD=0; ROWS=1000000; BATCH=10000
while (($#)); do
  case "$1" in
    --record) RECORD=1 ;;
    --rows) ROWS="$2"; shift ;;
    *) die "unknown argument $1" ;;
  esac
  shift
done
MYSQL_URL="${MYSQL_URL:-mysql://root@127.0.0.1:3306/}"
DB=kappa_bench
my() { mysql -h127.0.0.1 -uroot -N -B "$@"; }
my -e "SELECT 1" >/dev/null || die "MariaDB is not answering on 127.0.0.1:3306: run dev/services up"

cargo build --quiet --release -p kappa-source --example mysql_null_sink --example mysql_snapshot_null_sink
STREAM="$KAPPA_ROOT/target/release/examples/mysql_null_sink"
SNAPSHOT="$KAPPA_ROOT/target/release/examples/mysql_snapshot_null_sink"

teardown() { my -e "DROP DATABASE IF EXISTS $DB" || true; }
trap teardown EXIT
my -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB;
  CREATE TABLE $DB.bench (id BIGINT PRIMARY KEY, name VARCHAR(64), amount DECIMAL(12,2),
    at DATETIME(6), flag TINYINT) DEFAULT CHARSET=utf8mb4"
read -r START_FILE START_POS _ < <(my -e "SHOW MASTER STATUS")
for ((first = 1; first <= ROWS; first += BATCH)); do
  last=$((first + BATCH - 1)); ((last > ROWS)) && last=$ROWS
  my -e "INSERT INTO $DB.bench SELECT seq, CONCAT('name ', seq), seq / 100, '2024-01-01 00:00:00' + INTERVAL seq SECOND, seq % 2
         FROM $DB.seq_${first}_to_${last}"
done
read -r END_FILE END_POS _ < <(my -e "SHOW MASTER STATUS")
[ "$START_FILE" = "$END_FILE" ] || die "the inserts crossed a binlog rotation ($START_FILE → $END_FILE): rerun"
info "binlog $START_FILE $START_POS..$END_POS ($(( (END_POS - START_POS) / 1048576 )) MiB)"

t0=$(date +%s.%N)
mysqlbinlog --read-from-remote-server --host=127.0.0.1 --user=root \
  --start-position="$START_POS" --stop-position="$END_POS" "$START_FILE" >/dev/null
t1=$(date +%s.%N)
base_s=$(echo "$t1 - $t0" | bc -l)
# The plain dump copies row events as base64 without decoding them; --verbose also decodes every
# row into pseudo-SQL, which is closer to kappa's work (typed values per column).
t0=$(date +%s.%N)
mysqlbinlog --read-from-remote-server --host=127.0.0.1 --user=root --verbose \
  --start-position="$START_POS" --stop-position="$END_POS" "$START_FILE" >/dev/null
t1=$(date +%s.%N)
verbose_s=$(echo "$t1 - $t0" | bc -l)
line=$("$STREAM" "$MYSQL_URL" "$DB.bench" "$START_FILE" "$START_POS" "$END_FILE" "$END_POS")
ours_rows=${line% *}; ours_s=${line#* }
[ "$ours_rows" = "$ROWS" ] || die "kappa's reader decoded $ours_rows rows, expected $ROWS"
stream_base=$(echo "$ROWS / $base_s" | bc -l); stream_ours=$(echo "$ROWS / $ours_s" | bc -l)
stream_ratio=$(echo "$stream_ours / $stream_base" | bc -l)
stream_verbose=$(echo "$ROWS / $verbose_s" | bc -l)
verbose_ratio=$(echo "$stream_ours / $stream_verbose" | bc -l)

t0=$(date +%s.%N)
mysqldump -h127.0.0.1 -uroot --single-transaction "$DB" bench >/dev/null
t1=$(date +%s.%N)
dump_s=$(echo "$t1 - $t0" | bc -l)
line=$("$SNAPSHOT" "$MYSQL_URL" "$DB.bench")
snap_rows=${line% *}; snap_s=${line#* }
[ "$snap_rows" = "$ROWS" ] || die "kappa's snapshot read $snap_rows rows, expected $ROWS"
snap_base=$(echo "$ROWS / $dump_s" | bc -l); snap_ours=$(echo "$ROWS / $snap_s" | bc -l)
snap_ratio=$(echo "$snap_ours / $snap_base" | bc -l)

report=$(printf '| stream: %d rows in batches of %d | mysqlbinlog %.0f rows/s (%.2f s) | kappa %.0f rows/s (%.2f s) | %.2f× |\n| stream, same | mysqlbinlog --verbose %.0f rows/s (%.2f s) | kappa (as above) | %.2f× |\n| snapshot: %d rows | mysqldump --single-transaction %.0f rows/s (%.2f s) | kappa %.0f rows/s (%.2f s) | %.2f× |' \
  "$ROWS" "$BATCH" "$stream_base" "$base_s" "$stream_ours" "$ours_s" "$stream_ratio" \
  "$stream_verbose" "$verbose_s" "$verbose_ratio" \
  "$ROWS" "$snap_base" "$dump_s" "$snap_ours" "$snap_s" "$snap_ratio")
echo "$report"
if ((RECORD)); then
  {
    echo
    echo "### $(date -u +%Y-%m-%dT%H:%MZ) — \`bench/mysql_stream.sh --rows $ROWS\`"
    echo
    echo "| case | baseline | kappa | ratio |"
    echo "|---|---|---|---|"
    echo "$report"
  } >> bench/RESULTS-mysql.md
fi
