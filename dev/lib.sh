# shellcheck shell=bash
# Shared helpers for dev/services, dev/test and .ci/run. Source it; do not execute it.

# Repository root (dev/..), absolute.
KAPPA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KAPPA_ROOT

# cargo-installed tools (nisshi, rivven-schema, cargo itself) live in ~/.cargo/bin.
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
