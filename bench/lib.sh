# shellcheck shell=bash
# Shared by the bench scripts: options, the PostgreSQL client, recording results. Source it.
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
cd "$KAPPA_ROOT"

PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
psql_q() { psql "$PG_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }

# bench_args "ROWS TXNS" "$@": `--record` sets RECORD=1; `--rows N` sets ROWS=N, and so on for
# each variable named in the first argument (defaults are set by the caller beforehand).
# BENCH_ARGS keeps the options as given, for the results heading.
bench_args() {
  local allowed=" $1 " name
  shift
  RECORD=0
  BENCH_ARGS="$*"
  while (($#)); do
    case "$1" in
      --record) RECORD=1 ;;
      --*)
        name=$(tr 'a-z-' 'A-Z_' <<<"${1#--}")
        [[ "$allowed" == *" $name "* ]] && (($# >= 2)) || die "unknown option $1 (takes --record and: $allowed)"
        printf -v "$name" '%s' "$2"
        shift
        ;;
      *) die "unknown argument $1" ;;
    esac
    shift
  done
}

# record_results NOTE TABLE: prints TABLE; with --record, appends it to bench/RESULTS.md under a
# heading naming the date and the command that produced it, followed by NOTE.
record_results() {
  section "results"
  printf '%s\n' "$2"
  if ((RECORD)); then
    printf '\n## %s — `bench/%s %s`\n\n%s\n\n%s\n' "$(date -u +%Y-%m-%d)" "$(basename "$0")" \
      "${BENCH_ARGS//--record/}" "$1" "$2" | sed 's/  *`$/`/' >> bench/RESULTS.md
  fi
}

# drop_slots NAME...: drops these replication slots if they exist, ending a walsender that still
# holds one (a reader that just exited may not have been noticed yet).
drop_slots() {
  local list
  list=$(printf "'%s'," "$@")
  list="${list%,}"
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    psql_q -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name IN ($list) AND active" >/dev/null
    psql_q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ($list)" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  warn "could not drop replication slots $list: drop them by hand, they pin WAL"
}

# slot_pair_setup NAME COLUMNS: a fresh table public.NAME (COLUMNS inside CREATE TABLE (…)), a
# publication NAME of it, and two pgoutput slots created at the same position, NAME_ours for
# kappa's reader and NAME_recv for pg_recvlogical, so both read the same WAL.
slot_pair_setup() {
  drop_slots "$1_ours" "$1_recv"
  psql_q >/dev/null <<SQL
DROP PUBLICATION IF EXISTS $1;
DROP TABLE IF EXISTS public.$1;
CREATE TABLE public.$1 ($2);
CREATE PUBLICATION $1 FOR TABLE public.$1;
SELECT 'x' FROM pg_create_logical_replication_slot('$1_ours', 'pgoutput');
SELECT 'x' FROM pg_create_logical_replication_slot('$1_recv', 'pgoutput');
SQL
}

# slot_pair_teardown NAME: drops what slot_pair_setup made.
slot_pair_teardown() {
  drop_slots "$1_ours" "$1_recv"
  psql_q -c "DROP PUBLICATION IF EXISTS $1; DROP TABLE IF EXISTS public.$1" >/dev/null || true
}
