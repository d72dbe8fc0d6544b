#!/usr/bin/env bash
# kappa next to Debezium (Kafka Connect standalone + debezium-connector-postgres 3.6.1.Final / -mariadb),
# one after the other in the same run, same PostgreSQL / MariaDB, same Kafka, same registry:
#   pg1: initial snapshot of a ROWS-row table, timed from process start until the topic's end
#        offsets sum to ROWS (every record acknowledged by the broker);
#   pg2: ROWS rows in one transaction then TXNS single-row transactions, written while neither
#        reads, then drained: kappa, Debezium and `pg_recvlogical` each from their own slot,
#        created before the writes (timed from process start until all are in Kafka);
#   pg3: commit→Kafka latency at RATE single-row commits/s for SECONDS s; commit time = the row's
#        `at` column (clock_timestamp() at the insert, just before its commit), arrival = the
#        receive time of a consumer tailing the topic (bench/debezium/KafkaProbe.java);
#   my1, my2: cases 1 and 2 on MariaDB (one transaction per 10,000 rows in my2 instead), Debezium's
#        MariaDB connector 3.5.0.Final (see bench/debezium/pom-mariadb.xml).
# Peak RSS of each process (kappa; the Connect JVM) is VmHWM from /proc, read just before it is
# stopped. Debezium writes Avro through the registry (Apicurio converter), or JSON with
# --converter json. Usage:
#   bench/debezium.sh [--record] [--rows N] [--txns N] [--rate N] [--seconds N] [--timeout S]
#                     [--cases "pg1 pg2 pg3 my1 my2"] [--converter avro|json] [--heap 1g]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS=1000000; TXNS=200000; RATE=5000; SECONDS_=60; TIMEOUT=900
CASES="pg1 pg2 pg3 my1 my2"; CONVERTER=avro; HEAP=1g
# bench_args sets variables by option name; --seconds would set bash's SECONDS, hence the rename.
args=()
for a in "$@"; do [ "$a" = --seconds ] && args+=(--seconds_) || args+=("$a"); done
bench_args "ROWS TXNS RATE SECONDS_ TIMEOUT CASES CONVERTER HEAP" "${args[@]}"
# The heading's command, quoted as typed (--cases "pg1 pg2").
BENCH_ARGS=""
for a in "$@"; do [ "$a" = --record ] && continue; [[ "$a" == *" "* ]] && BENCH_ARGS+=" \"$a\"" || BENCH_ARGS+=" $a"; done
BENCH_ARGS="${BENCH_ARGS# }"
BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
REGISTRY="${SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081/apis/ccompat/v7}"
REGISTRY_V2="${APICURIO_V2_URL:-http://127.0.0.1:8081/apis/registry/v2}"
MYSQL_URL="${MYSQL_URL:-mysql://root@127.0.0.1:3306/}"
DBZ="$KAPPA_ROOT/bench/debezium"
DIST="$KAPPA_ROOT/.kappa-state/dist/debezium-3.6.1"
MDIST="$KAPPA_ROOT/.kappa-state/dist/debezium-mariadb-3.5.0"
CONNECT_PORT=18083
LOADERS=8 # sessions writing the latency load
LATE=120 # seconds after the last commit the latency consumer keeps waiting
MY_DB=kappa_dbz_bench

# ---- jars and tools -------------------------------------------------------------------------
# resolve_lib POM DIR: Maven copies POM's jars into DIR/lib once per version of POM.
resolve_lib() {
  local stamp
  stamp=$(sha256sum "$DBZ/$1" | cut -c1-16)
  if [ "$(cat "$2/lib.complete" 2>/dev/null)" != "$stamp" ]; then
    info "resolving the jars of bench/debezium/$1 into $2/lib"
    rm -rf "${2:?}/lib"
    (cd "$DBZ" && mvn -B -q -f "$1" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$2/lib") ||
      die "mvn could not resolve bench/debezium/$1"
    echo "$stamp" > "$2/lib.complete"
  fi
}
resolve_jars() {
  resolve_lib pom.xml "$DIST"
  [[ " $CASES " == *" my"* ]] && resolve_lib pom-mariadb.xml "$MDIST"
  if [ ! -f "$DIST/probe/KafkaProbe.class" ] || [ "$DBZ/KafkaProbe.java" -nt "$DIST/probe/KafkaProbe.class" ]; then
    mkdir -p "$DIST/probe"
    javac -d "$DIST/probe" -cp "$DIST/lib/*" "$DBZ/KafkaProbe.java"
  fi
}
probe() { java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$DIST/probe:$DIST/lib/*" KafkaProbe "$@" 2>>"$WORK/probe.log"; }

# ---- bookkeeping for the trap ---------------------------------------------------------------
PIDS=(); SLOTS=(); PUBS=(); TABLES=(); TOPICS=()
cleanup() {
  # Best effort, never the run's verdict: under errexit a process gone between two checks (or a
  # slot already dropped) ended a finished run with status 1.
  set +e
  local pid
  if ((!RECORDED)) && [ -s "$WORK/failed" ]; then
    RESULTS+=("Did not finish — $(cat "$WORK/failed")")
    report
  fi
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ((${#SLOTS[@]})) && drop_slots "${SLOTS[@]}"
  for p in "${PUBS[@]}"; do psql_q -c "SET client_min_messages = warning; DROP PUBLICATION IF EXISTS $p" >/dev/null || true; done
  for t in "${TABLES[@]}"; do psql_q -c "DROP TABLE IF EXISTS public.$t" >/dev/null || true; done
  mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $MY_DB" 2>/dev/null || true
  ((${#TOPICS[@]})) && delete_kafka_topics "${TOPICS[@]}"
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}

# ---- processes ------------------------------------------------------------------------------
# peak_rss_mb PID: VmHWM of a running process, MB.
peak_rss_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# stop PID: SIGTERM, then up to 60 s for a clean exit (offsets flushed, slot confirmed).
stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# kappa_config NAME SOURCE_TOML: a kappa.toml for connector NAME (topics NAME.<schema>.<table>).
kappa_config() {
  cat > "$WORK/$1.toml" <<TOML
name = "$1"
$2
[kafka]
brokers = "$BROKERS"
topic_prefix = "$1"
offsets_topic = "$1.offsets"
[schema_registry]
url = "$REGISTRY"
TOML
  TOPICS+=("$1.offsets")
}
# start_kappa NAME: runs `kappa run` on $WORK/NAME.toml; sets PID.
start_kappa() {
  "$WORK/kappa" run --config "$WORK/$1.toml" >>"$WORK/$1.log" 2>&1 &
  PID=$!; PIDS+=("$PID")
}

# start_connect NAME CONNECTOR_TEMPLATE KEY=VALUE...: Connect standalone with one connector, its
# properties from the template with @KEY@ replaced; sets PID.
render() { # TEMPLATE OUT KEY=VALUE...
  local tpl=$1 out=$2 kv expr=()
  shift 2
  for kv in "$@"; do expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${expr[@]}" "$tpl" > "$out"
}
start_connect() { # (CONNECT_LIB: the jars, default Debezium 3.6.1's)
  local name=$1 tpl=$2 lib=${CONNECT_LIB:-$DIST/lib}
  shift 2
  render "$DBZ/worker.properties" "$WORK/$name.worker" BROKERS="$BROKERS" WORK="$WORK/$name" PORT=$CONNECT_PORT
  render "$DBZ/converter-$CONVERTER.properties" "$WORK/$name.converter" REGISTRY_V2="$REGISTRY_V2"
  cat "$WORK/$name.converter" >> "$WORK/$name.worker"
  render "$DBZ/$tpl" "$WORK/$name.connector" NAME="$name" WORK="$WORK/$name" "$@"
  mkdir -p "$WORK/$name"
  java "-Xms256m" "-Xmx$HEAP" -XX:+UseG1GC -Dconnect.log.file="$WORK/$name.log" \
    -Dlog4j2.configurationFile="$DBZ/connect-log4j2.properties" -cp "$lib/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$WORK/$name.worker" "$WORK/$name.connector" \
    >"$WORK/$name.out" 2>&1 &
  PID=$!; PIDS+=("$PID")
}

# fail MESSAGE: dies, leaving MESSAGE for the results (also from inside $(…)).
fail() { printf '%s: %s\n' "$CASE" "$1" >> "$WORK/failed"; die "$1"; }

# until_count TOPIC N T0 PID LOG: waits until TOPIC holds N records; prints seconds since T0.
until_count() {
  local line out="$WORK/count.$$.$RANDOM" probe_pid
  probe count "$BROKERS" "$1" "$2" "$TIMEOUT" > "$out" &
  probe_pid=$!
  while kill -0 "$probe_pid" 2>/dev/null; do
    if ! kill -0 "$4" 2>/dev/null; then
      kill "$probe_pid" 2>/dev/null; wait "$probe_pid" 2>/dev/null
      fail "the process writing $1 exited: $(grep -E 'ERROR|Exception|error' "$5" | tail -3)"
    fi
    sleep 0.05
  done
  wait "$probe_pid" || fail "$1 holds $(sed 's/timeout //' "$out") of $2 records after ${TIMEOUT}s; log $5: $(grep -E 'ERROR|error' "$5" | tail -3)"
  line=$(cat "$out")
  echo "${line% *} - $3" | bc -l
}

# wait_log FILE PATTERN PID: until PATTERN is in FILE (bounded by TIMEOUT).
wait_log() {
  local deadline=$((SECONDS + TIMEOUT))
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || fail "process exited before '$2': $(tail -5 "$1")"
    ((SECONDS < deadline)) || fail "no '$2' in $1 after ${TIMEOUT}s"
    sleep 0.1
  done
}

rate() { echo "$1 / $2" | bc -l; }
ratio() { echo "$1 / $2" | bc -l; }

PG_COLUMNS="id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, flag boolean"
pg_table() { # NAME: an empty table, REPLICA IDENTITY FULL (kappa refuses TOAST-able columns otherwise)
  TABLES+=("$1")
  psql_q -c "SET client_min_messages = warning; DROP TABLE IF EXISTS public.$1; CREATE TABLE public.$1 ($PG_COLUMNS); ALTER TABLE public.$1 REPLICA IDENTITY FULL" >/dev/null
}
pg_insert() { # TABLE FIRST LAST: one transaction
  psql_q -c "INSERT INTO public.$1 SELECT g, 'name ' || g, g / 100.0, clock_timestamp(), g % 2 = 0 FROM generate_series($2, $3) g"
}
pg_kappa_source() { # NAME TABLE
  printf '[source.postgres]\nurl = "%s"\ntables = ["public.%s"]\nslot = "%s"\npublication = "%s"\n' "$PG_URL" "$2" "$1" "$1"
  SLOTS+=("$1"); PUBS+=("$1")
}
dbz_pg() { # NAME TABLE SNAPSHOT_MODE PUBLICATION_MODE
  SLOTS+=("$1"); PUBS+=("$1"); TOPICS+=("$1.public.$2")
  start_connect "$1" postgres.properties PREFIX="$1" TABLE="$2" SLOT="$1" SNAPSHOT_MODE="$3" PUBLICATION_MODE="$4"
}

RESULTS=(); RECORDED=0; CASE=""
add_result() { RESULTS+=("$1"); printf '%s\n' "$1"; }

# ---- PostgreSQL -----------------------------------------------------------------------------
# snapshot_result DATABASE KAPPA_SECONDS DEBEZIUM_SECONDS KAPPA_RSS_MB DEBEZIUM_RSS_MB: the result
# table of an initial-snapshot case (ROWS rows each).
snapshot_result() {
  local kr dr
  kr=$(rate "$ROWS" "$2"); dr=$(rate "$ROWS" "$3")
  add_result "$(printf '| case | rows | kappa rows/s | Debezium rows/s | kappa/Debezium | kappa peak RSS MB | Connect JVM peak RSS MB | RSS kappa/Debezium |\n|---|---|---|---|---|---|---|---|\n| %s initial snapshot | %d | %.0f (%.1f s) | %.0f (%.1f s) | %.2f× | %s | %s | %.3f |' \
    "$1" "$ROWS" "$kr" "$2" "$dr" "$3" "$(ratio "$kr" "$dr")" "$4" "$5" "$(ratio "$4" "$5")")"
}

case_pg1() {
  section "pg1: initial snapshot of $ROWS rows"
  local t="${RUN}_snap" k="${RUN}_k1" d="${RUN}_d1" t0 ks ds krss drss
  pg_table "$t"; pg_insert "$t" 1 "$ROWS" >/dev/null
  psql_q -c "VACUUM ANALYZE public.$t" >/dev/null
  pg_kappa_source "$k" "$t" > "$WORK/src.toml"; kappa_config "$k" "$(cat "$WORK/src.toml")"; TOPICS+=("$k.public.$t")
  t0=$(date +%s.%N); start_kappa "$k"
  ks=$(until_count "$k.public.$t" "$ROWS" "$t0" "$PID" "$WORK/$k.log"); krss=$(peak_rss_mb "$PID"); stop "$PID"
  info "kappa: ${ks}s, peak RSS ${krss} MB"
  psql_q -c "SELECT count(*) FROM public.$t" >/dev/null
  t0=$(date +%s.%N); dbz_pg "$d" "$t" initial filtered
  ds=$(until_count "$d.public.$t" "$ROWS" "$t0" "$PID" "$WORK/$d.log"); drss=$(peak_rss_mb "$PID"); stop "$PID"
  info "Debezium: ${ds}s, peak RSS ${drss} MB"
  snapshot_result PostgreSQL "$ks" "$ds" "$krss" "$drss"
}

case_pg2() {
  local total=$((ROWS + TXNS))
  section "pg2: $ROWS rows in one transaction + $TXNS single-row transactions, streamed"
  local t="${RUN}_strm" k="${RUN}_k2" d="${RUN}_d2" r="${RUN}_r2" t0 t1 ks ds rs krss drss end
  pg_table "$t"
  # kappa makes its slot and snapshots the empty table on a first start, then stops; Debezium
  # and pg_recvlogical get their slots and publication here. Nobody reads during the writes.
  pg_kappa_source "$k" "$t" > "$WORK/src.toml"; kappa_config "$k" "$(cat "$WORK/src.toml")"; TOPICS+=("$k.public.$t")
  start_kappa "$k"; wait_log "$WORK/$k.log" "initial snapshot delivered" "$PID"; stop "$PID"
  SLOTS+=("$d" "$r"); PUBS+=("$d")
  psql_q >/dev/null <<SQL
CREATE PUBLICATION $d FOR TABLE public.$t;
SELECT 'x' FROM pg_create_logical_replication_slot('$d', 'pgoutput');
SELECT 'x' FROM pg_create_logical_replication_slot('$r', 'pgoutput');
SQL
  info "writing $ROWS rows in one transaction, then $TXNS single-row transactions"
  pg_insert "$t" 1 "$ROWS" >/dev/null
  psql_q -c "DO \$\$ BEGIN FOR g IN $((ROWS + 1))..$total LOOP INSERT INTO public.$t VALUES (g, 'name ' || g, g / 100.0, clock_timestamp(), g % 2 = 0); COMMIT; END LOOP; END \$\$"
  end=$(psql_q -c "SELECT pg_current_wal_lsn()")
  t0=$(date +%s.%N)
  timeout "$TIMEOUT" pg_recvlogical -d "$PG_URL" --slot "$r" --start --endpos "$end" \
    -o proto_version=1 -o publication_names="$d" -f /dev/null
  t1=$(date +%s.%N); rs=$(echo "$t1 - $t0" | bc -l)
  info "pg_recvlogical: ${rs}s"
  t0=$(date +%s.%N); start_kappa "$k"
  ks=$(until_count "$k.public.$t" "$total" "$t0" "$PID" "$WORK/$k.log"); krss=$(peak_rss_mb "$PID"); stop "$PID"
  info "kappa: ${ks}s, peak RSS ${krss} MB"
  # The slot exists and is at the position before the writes: stream only, from there.
  t0=$(date +%s.%N); dbz_pg "$d" "$t" no_data disabled
  ds=$(until_count "$d.public.$t" "$total" "$t0" "$PID" "$WORK/$d.log"); drss=$(peak_rss_mb "$PID"); stop "$PID"
  info "Debezium: ${ds}s, peak RSS ${drss} MB"
  local kr dr rr
  kr=$(rate "$total" "$ks"); dr=$(rate "$total" "$ds"); rr=$(rate "$total" "$rs")
  add_result "$(printf '| case | rows | kappa rows/s | Debezium rows/s | kappa/Debezium | pg_recvlogical rows/s | kappa/pg_recvlogical | kappa peak RSS MB | Connect JVM peak RSS MB | RSS kappa/Debezium |\n|---|---|---|---|---|---|---|---|---|---|\n| PostgreSQL stream: 1 × %d-row transaction + %d single-row transactions | %d | %.0f (%.1f s) | %.0f (%.1f s) | %.2f× | %.0f (%.1f s) | %.2f× | %s | %s | %.3f |' \
    "$ROWS" "$TXNS" "$total" "$kr" "$ks" "$dr" "$ds" "$(ratio "$kr" "$dr")" "$rr" "$rs" "$(ratio "$kr" "$rr")" "$krss" "$drss" "$(ratio "$krss" "$drss")")"
}

# pg_latency WHO TABLE TOPIC PID LOG: two warm-up rows (the second one surely streamed), then
# RATE commits/s for SECONDS s while a consumer tails TOPIC; prints "p50 p99 achieved_rate" (ms).
pg_latency() {
  local who=$1 t=$2 topic=$3 pid=$4 log=$5 n=$((RATE * SECONDS_)) tail_pid
  psql_q -c "INSERT INTO public.$t VALUES (-1, 'warm-up', 0, clock_timestamp(), true)"
  until_count "$topic" 1 0 "$pid" "$log" >/dev/null
  psql_q -c "INSERT INTO public.$t VALUES (0, 'warm-up', 0, clock_timestamp(), true)"
  until_count "$topic" 2 0 "$pid" "$log" >/dev/null
  probe tail "$BROKERS" "$topic" "$n" "$((SECONDS_ + LATE))" "$WORK/$who.recv" > "$WORK/$who.tail" &
  tail_pid=$!; PIDS+=("$tail_pid")
  until [ -s "$WORK/$who.tail" ]; do kill -0 $tail_pid 2>/dev/null || die "the consumer exited: $(tail -3 "$WORK/probe.log")"; sleep 0.1; done
  # LOADERS sessions share one schedule (row g no earlier than t0 + g/RATE), so that group commit
  # carries the rate: one session commits only ~800 single-row transactions/s on this disk.
  local t0 k lpids=()
  t0=$(psql_q -c "SELECT clock_timestamp() + interval '1 second'")
  for ((k = 1; k <= LOADERS; k++)); do
    psql_q -c "DO \$\$ BEGIN
      FOR g IN 0..$(((n - k) / LOADERS)) LOOP
        WHILE clock_timestamp() < '$t0'::timestamptz + make_interval(secs => (g * $LOADERS + $k)::float8 / $RATE) LOOP PERFORM pg_sleep(0.0005); END LOOP;
        INSERT INTO public.$t VALUES (g * $LOADERS + $k, 'name ' || g, g / 100.0, clock_timestamp(), g % 2 = 0); COMMIT;
      END LOOP; END \$\$" &
    lpids+=($!)
  done
  for k in "${lpids[@]}"; do wait "$k"; done
  wait $tail_pid || warn "$who: the consumer saw $(wc -l < "$WORK/$who.recv") of $n records within $((SECONDS_ + LATE)) s"
  # A row not delivered by the end counts as infinitely late, so p50/p99 never flatter a backlog.
  psql_q -F ' ' <<SQL
CREATE TEMP TABLE recv (id bigint, us bigint);
\\copy recv FROM '$WORK/$who.recv' WITH (DELIMITER ' ')
SELECT coalesce(round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)::text, 'never'),
       coalesce(round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)::text, 'never'),
       round(count(*) / extract(epoch FROM max(at) - min(at))::numeric, 0),
       count(ms) FILTER (WHERE ms < 'Infinity')
FROM (SELECT CASE WHEN r.us IS NULL THEN 'Infinity'::float8
                  ELSE (r.us - extract(epoch FROM s.at) * 1e6) / 1000.0 END AS ms, s.at
      FROM public.$t s LEFT JOIN recv r ON s.id = r.id WHERE s.id > 0) x;
SQL
}

case_pg3() {
  section "pg3: commit→Kafka latency at $RATE rows/s for $SECONDS_ s"
  local tk="${RUN}_latk" td="${RUN}_latd" k="${RUN}_k3" d="${RUN}_d3" kl dl krss drss
  pg_table "$tk"; pg_table "$td"
  pg_kappa_source "$k" "$tk" > "$WORK/src.toml"; kappa_config "$k" "$(cat "$WORK/src.toml")"; TOPICS+=("$k.public.$tk")
  start_kappa "$k"
  pg_latency kappa "$tk" "$k.public.$tk" "$PID" "$WORK/$k.log" > "$WORK/kappa.lat"; kl=$(cat "$WORK/kappa.lat"); krss=$(peak_rss_mb "$PID"); stop "$PID"
  info "kappa: p50 p99 ms, rows/s: $kl; peak RSS $krss MB"
  dbz_pg "$d" "$td" initial filtered
  pg_latency debezium "$td" "$d.public.$td" "$PID" "$WORK/$d.log" > "$WORK/debezium.lat"; dl=$(cat "$WORK/debezium.lat"); drss=$(peak_rss_mb "$PID"); stop "$PID"
  info "Debezium: p50 p99 ms, rows/s: $dl; peak RSS $drss MB"
  local kp50 kp99 krate kgot dp50 dp99 drate dgot
  read -r kp50 kp99 krate kgot <<<"$kl"; read -r dp50 dp99 drate dgot <<<"$dl"
  add_result "$(printf '| case | rows | kappa p50 / p99 ms | Debezium p50 / p99 ms | delivered within %d s of the last commit (kappa / Debezium) | achieved commits/s (kappa run / Debezium run) | kappa peak RSS MB | Connect JVM peak RSS MB | RSS kappa/Debezium |\n|---|---|---|---|---|---|---|---|---|\n| PostgreSQL commit→Kafka latency, %d single-row commits/s for %d s | %d | %s / %s | %s / %s | %s / %s | %s / %s | %s | %s | %.3f |' \
    "$LATE" "$RATE" "$SECONDS_" "$((RATE * SECONDS_))" "$kp50" "$kp99" "$dp50" "$dp99" "$kgot" "$dgot" "$krate" "$drate" "$krss" "$drss" "$(ratio "$krss" "$drss")")"
}

# ---- MariaDB --------------------------------------------------------------------------------
my() { mysql -h127.0.0.1 -uroot -N -B "$@"; }
my_table() { # NAME: an empty table in MY_DB
  my -e "CREATE DATABASE IF NOT EXISTS $MY_DB; DROP TABLE IF EXISTS $MY_DB.$1;
    CREATE TABLE $MY_DB.$1 (id BIGINT PRIMARY KEY, name VARCHAR(64), amount DECIMAL(12,2), at DATETIME(6), flag TINYINT) DEFAULT CHARSET=utf8mb4"
}
my_insert() { # TABLE FIRST LAST: one transaction per 10,000 rows (MariaDB's sequence engine)
  local first last
  for ((first = $2; first <= $3; first += 10000)); do
    last=$((first + 9999)); ((last > $3)) && last=$3
    my -e "INSERT INTO $MY_DB.$1 SELECT seq, CONCAT('name ', seq), seq / 100, NOW(6), seq % 2 FROM seq_${first}_to_${last}" "$MY_DB"
  done
}
my_kappa_source() { # NAME TABLE SERVER_ID
  printf '[source.mysql]\nurl = "%s"\ntables = ["%s.%s"]\nserver_id = %d\n' "$MYSQL_URL" "$MY_DB" "$2" "$3"
}
dbz_my() { # NAME TABLE SNAPSHOT_MODE SERVER_ID [EXTRA_LINE]
  TOPICS+=("$1.$MY_DB.$2" "__debezium-heartbeat.$1")
  CONNECT_LIB="$MDIST/lib" start_connect "$1" mariadb.properties PREFIX="$1" DB="$MY_DB" TABLE="$2" SNAPSHOT_MODE="$3" SERVER_ID="$4"
}

case_my1() {
  section "my1: MariaDB initial snapshot of $ROWS rows"
  local t=snap k="${RUN}_mk1" d="${RUN}_md1" t0 ks ds krss drss
  my_table "$t"; my_insert "$t" 1 "$ROWS"
  kappa_config "$k" "$(my_kappa_source "$k" "$t" 5711)"; TOPICS+=("$k.$MY_DB.$t")
  t0=$(date +%s.%N); start_kappa "$k"
  ks=$(until_count "$k.$MY_DB.$t" "$ROWS" "$t0" "$PID" "$WORK/$k.log"); krss=$(peak_rss_mb "$PID"); stop "$PID"
  info "kappa: ${ks}s, peak RSS ${krss} MB"
  t0=$(date +%s.%N); dbz_my "$d" "$t" initial 5721
  ds=$(until_count "$d.$MY_DB.$t" "$ROWS" "$t0" "$PID" "$WORK/$d.log"); drss=$(peak_rss_mb "$PID"); stop "$PID"
  info "Debezium: ${ds}s, peak RSS ${drss} MB"
  snapshot_result MariaDB "$ks" "$ds" "$krss" "$drss"
}

case_my2() {
  local total=$((ROWS + TXNS))
  section "my2: MariaDB $ROWS rows in transactions of 10,000 + $TXNS single-row transactions, streamed"
  local t=strm k="${RUN}_mk2" d="${RUN}_md2" t0 ks ds krss drss
  my_table "$t"
  # Both start on the empty table and stop once their position is stored (Debezium's through a
  # heartbeat record, the only record it makes before any row); nobody reads during the writes.
  kappa_config "$k" "$(my_kappa_source "$k" "$t" 5712)"; TOPICS+=("$k.$MY_DB.$t")
  start_kappa "$k"; wait_log "$WORK/$k.log" "initial snapshot delivered" "$PID"; stop "$PID"
  dbz_my "$d" "$t" initial 5722
  until_count "__debezium-heartbeat.$d" 2 0 "$PID" "$WORK/$d.log" >/dev/null
  sleep 2; stop "$PID"
  info "writing $ROWS rows in transactions of 10,000, then $TXNS single-row transactions"
  my_insert "$t" 1 "$ROWS"
  my --delimiter='//' -e "FOR g IN $((ROWS + 1))..$total DO INSERT INTO $MY_DB.$t VALUES (g, CONCAT('name ', g), g / 100, NOW(6), g % 2); END FOR"
  t0=$(date +%s.%N); start_kappa "$k"
  ks=$(until_count "$k.$MY_DB.$t" "$total" "$t0" "$PID" "$WORK/$k.log"); krss=$(peak_rss_mb "$PID"); stop "$PID"
  info "kappa: ${ks}s, peak RSS ${krss} MB"
  t0=$(date +%s.%N); dbz_my "$d" "$t" initial 5722
  ds=$(until_count "$d.$MY_DB.$t" "$total" "$t0" "$PID" "$WORK/$d.log"); drss=$(peak_rss_mb "$PID"); stop "$PID"
  info "Debezium: ${ds}s, peak RSS ${drss} MB"
  local kr dr
  kr=$(rate "$total" "$ks"); dr=$(rate "$total" "$ds")
  add_result "$(printf '| case | rows | kappa rows/s | Debezium rows/s | kappa/Debezium | kappa peak RSS MB | Connect JVM peak RSS MB | RSS kappa/Debezium |\n|---|---|---|---|---|---|---|---|\n| MariaDB stream: %d rows in transactions of 10,000 + %d single-row transactions | %d | %.0f (%.1f s) | %.0f (%.1f s) | %.2f× | %s | %s | %.3f |' \
    "$ROWS" "$TXNS" "$total" "$kr" "$ks" "$dr" "$ds" "$(ratio "$kr" "$dr")" "$krss" "$drss" "$(ratio "$krss" "$drss")")"
}

# report: the results so far (with --record, appended to bench/RESULTS.md), once.
report() {
  RECORDED=1
  local java_version conv="JSON (JsonConverter, schemas.enable=false)"
  java_version=$(java -version 2>&1 | awk -F'"' '/version/ { print $2 }')
  [ "$CONVERTER" = avro ] && conv="Avro through the registry (Apicurio apicurio-registry-utils-converter 2.6.13.Final, v2 API, Confluent framing)"
  NOTE=$(cat <<EOF
Machine: $(nproc) cores, $(psql_q -c 'SELECT version()' | cut -d, -f1), MariaDB $(mysql -h127.0.0.1 -uroot -N -B -e 'SELECT VERSION()' 2>/dev/null), Apache Kafka 4.4.0 (one KRaft node), Apicurio Registry 3; the same services for both.
PostgreSQL: Debezium 3.6.1.Final on Kafka Connect 4.3.0 standalone — the Kafka version Debezium 3.6.1 is built against; on 4.4.0 its task dies with NoClassDefFoundError org/apache/kafka/common/utils/Sanitizer. MariaDB: debezium-connector-mariadb 3.5.0.Final on Kafka Connect 4.1.1 (no 3.6.1 MariaDB connector on Maven Central; the 3.6.1 MySQL connector refuses MariaDB 10.11: "should support SHOW BINARY LOG STATUS"). Java $java_version, -Xms256m -Xmx$HEAP, G1. Converter: $conv. Producer acks=all, idempotent, lz4, linger.ms=20, batch.size=1 MB; Debezium's own defaults otherwise (max.batch.size 2048, max.queue.size 8192, poll.interval.ms 500). kappa ($KAPPA_BUILD): acks=all, idempotent, lz4, linger.ms=20 (sink/src/producer.rs).
Times run from process start (JVM or kappa start, connect, slot, snapshot) until the topic's end offsets reach the row count (every record acknowledged); one after the other, kappa first. Peak RSS = VmHWM read just before the process is stopped. Case 2 is written while nobody reads, then drained from slots made before the writes (Debezium with snapshot.mode=no_data on its pre-made slot and publication; elsewhere snapshot.mode=initial). Latency: commit time = clock_timestamp() at the insert, each row its own transaction, $LOADERS writer sessions on one schedule; arrival = receive time in a Java consumer tailing the topic (same clock); rows not delivered within $LATE s of the end count as infinitely late.
EOF
)
  record_results "$NOTE" "$(printf '%s\n\n' "${RESULTS[@]}")"
}

# ---- main -----------------------------------------------------------------------------------
main() {
  bash dev/services status >/dev/null || die "services are not all up: bash dev/services status"
  curl -sf "$REGISTRY/subjects" >/dev/null || die "no schema registry at $REGISTRY"
  cargo build --quiet --release --bin kappa
  resolve_jars
  RUN="dbz$(date +%s)"
  WORK=$(mktemp -d)
  trap cleanup EXIT
  # This run's kappa, whatever else rebuilds target/ meanwhile.
  cp target/release/kappa "$WORK/kappa"
  KAPPA_BUILD="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src source sink materialize schemas 2>/dev/null || echo ' + uncommitted changes'), built $(date -u -r target/release/kappa +%H:%MZ)"
  for c in $CASES; do
    case "$c" in
      pg1 | pg2 | pg3 | my1 | my2) CASE=$c; "case_$c" ;;
      *) die "unknown case $c (pg1 pg2 pg3 my1 my2)" ;;
    esac
  done
  report
}
# One line: bash has read all of it before main runs, so editing this file mid-run is harmless.
main "$@"; exit
