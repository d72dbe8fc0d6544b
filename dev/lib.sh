# shellcheck shell=bash
# Shared helpers for dev/services, dev/test and .ci/run. Source it; do not execute it.

# Repository root (dev/..), absolute.
KAPPA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KAPPA_ROOT

# cargo (and rustup's tools) live in ~/.cargo/bin.
kappa_cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
case ":${PATH:-}:" in
  *":$kappa_cargo_bin:"*) ;;
  *) PATH="$kappa_cargo_bin${PATH:+:$PATH}" ;;
esac
export PATH
unset kappa_cargo_bin

section() { printf '\n==== %s ====\n' "$*"; }
info() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# True when running under CI (CI=true, as set by most CI systems; 1/yes accepted too).
is_ci() {
  case "${CI:-}" in
    true | TRUE | True | 1 | yes) return 0 ;;
    *) return 1 ;;
  esac
}

# kafka_tool CLASS ARGS...: one of Apache Kafka's command-line tools (TopicCommand, ConfigCommand,
# ConsumerGroupCommand, …: class names under org.apache.kafka.tools) from the distribution
# `dev/services up` installed into the state dir.
kafka_tool() {
  local class=$1 dist
  shift
  dist="$(find "${KAPPA_STATE_DIR:-$KAPPA_ROOT/.kappa-state}/dist" -maxdepth 1 -name 'kafka-*' -type d 2>/dev/null | sort -V | tail -n 1)"
  [[ -n $dist && -f $dist/.complete ]] || die "no Apache Kafka distribution under ${KAPPA_STATE_DIR:-$KAPPA_ROOT/.kappa-state}/dist: run dev/services up"
  java -Xmx256m -cp "$dist/*" "org.apache.kafka.tools.$class" "$@"
}

# delete_kafka_topics TOPIC...: deletes these topics from the broker (missing ones are fine), in one
# JVM start.
delete_kafka_topics() {
  local topic pattern=''
  (($#)) || return 0
  for topic in "$@"; do pattern+="${pattern:+|}${topic//./\\.}"; done
  kafka_tool TopicCommand --bootstrap-server "${KAFKA_BROKERS:-127.0.0.1:9092}" \
    --delete --if-exists --topic "$pattern" >/dev/null 2>&1 || warn "could not delete topics $*"
}
