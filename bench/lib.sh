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
