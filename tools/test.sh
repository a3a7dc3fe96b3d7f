#!/usr/bin/env bash
# Installs what is missing (Debian packages, and Apache Kafka's broker from Maven Central for
# the real-Kafka suite), builds and runs every test. Extra arguments go to `bazel test` (for
# example --config=asan); target patterns among them replace //... :
#
#   tools/test.sh                      everything
#   tools/test.sh //testing/kafka/...  the real-Kafka suite alone
#
# The last line is "N passed, N failed[, N skipped]", counting test cases (a test target that
# crashed, timed out or did not build counts as one failure); above it, a "FAILED //target
# (STATUS) cases" line names each failure.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/install_deps.sh || exit 1

targets=() flags=()
for arg in "$@"; do
  case "$arg" in
    //*|:*) targets+=("$arg") ;;
    *) flags+=("$arg") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(//...)

log="$(mktemp -t kafka-sidecar-test.XXXXXX.log)"
bazel test "${flags[@]}" -- "${targets[@]}" 2>&1 | tee "$log"
bazel_status=${PIPESTATUS[0]}
testlogs="$(bazel info bazel-testlogs "${flags[@]}" 2>/dev/null)"

passed=0 failed=0 skipped=0 failures_seen=()
# Bazel's summary: one line per test target, "//pkg:target  [(cached)] STATUS [in Ns]".
while read -r target status; do
  dir="$testlogs/$(echo "${target#//}" | tr ':' '/')"
  tests=0 failures=0 errors=0 disabled=0
  # A sharded test has one report per shard.
  xmls=("$dir"/shard_*/test.xml)
  [ -f "${xmls[0]}" ] || xmls=("$dir/test.xml")
  for xml in "${xmls[@]}"; do
    [ -f "$xml" ] || continue
    header="$(grep -m1 -o '<testsuites [^>]*>' "$xml" || true)"
    for field in tests failures errors disabled; do
      value="$(echo "$header" | sed -n "s/.* $field=\"\([0-9]*\)\".*/\1/p")"
      printf -v "$field" '%s' "$((${!field} + ${value:-0}))"
    done
    # GTEST_SKIP()ped cases are counted as skipped (gtest lists them per test case).
    disabled=$((disabled + $(grep -c 'result="skipped"' "$xml" || true)))
  done
  case "$status" in
    PASSED|FLAKY)
      if [ "$tests" -gt 0 ]; then
        passed=$((passed + tests - disabled)); skipped=$((skipped + disabled))
      else
        passed=$((passed + 1))
      fi ;;
    *)
      bad=$((failures + errors))
      [ "$bad" -gt 0 ] || bad=1
      # Name what failed, so that the last lines of a CI log say it: gtest's failed cases, or
      # the target and how it ended.
      logs=("$dir"/shard_*/test.log)
      [ -f "${logs[0]}" ] || logs=("$dir/test.log")
      cases="$(cat "${logs[@]}" 2>/dev/null |
        sed -n -E 's/^\[  FAILED  \] ([A-Za-z0-9_/.]+)( \(.*\))?$/\1/p' | sort -u | tr '\n' ' ')"
      failures_seen+=("FAILED $target ($status) ${cases% }")
      failed=$((failed + bad))
      [ "$tests" -gt 0 ] && passed=$((passed + tests - disabled - failures - errors)) ;;
  esac
done < <(sed -n -E 's#^(//[^ ]+)[[:space:]]+(\(cached\)[[:space:]]+)?(PASSED|FLAKY|FAILED TO BUILD|FAILED|TIMEOUT|NO STATUS|INCOMPLETE|REMOTE FAILURE)( in .*)?$#\1 \3#p' "$log" | sed 's/ TO BUILD$//; s/ STATUS$//')

if [ "$bazel_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # the build itself failed before any test ran
  failures_seen+=("FAILED //... (bazel exited $bazel_status: see its errors above)")
fi
for line in "${failures_seen[@]}"; do echo "$line"; done
summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
