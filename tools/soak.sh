#!/usr/bin/env bash
# Runs the whole suite several times in a row (tools/test.sh, results never cached) while one
# core is kept busy, as on a loaded CI machine: a test that fails only sometimes, or only when
# CPU is short, fails here. Extra arguments go to `bazel test` (for example --config=asan).
#
#   tools/soak.sh [--rounds=5] [bazel test arguments]
#
# Stops at the first failing round. The last line is "N rounds passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

rounds=5
args=()
for arg in "$@"; do
  case "$arg" in
    --rounds=*) rounds="${arg#*=}" ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: --rounds must be a positive number" >&2; exit 2; }

yes >/dev/null &  # the busy core
busy=$!
trap 'kill "$busy" 2>/dev/null' EXIT

passed=0 failed=0
for ((round = 1; round <= rounds; round++)); do
  echo "=== round $round of $rounds: tools/test.sh --nocache_test_results ${args[*]}"
  log="$(mktemp -t kafka-sidecar-soak.XXXXXX.log)"
  start=$SECONDS
  if tools/test.sh --nocache_test_results "${args[@]}" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "round $round: $(tail -n 1 "$log") in $((SECONDS - start)) s"
  else
    failed=$((failed + 1))
    echo "round $round: $(tail -n 1 "$log") in $((SECONDS - start)) s; failing targets:"
    grep -E '^//.*(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log" || true
    echo "(whole log: $log)"
    break
  fi
done
echo "$passed rounds passed, $failed failed"
[ "$failed" -eq 0 ]
