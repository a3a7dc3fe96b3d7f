#!/bin/bash
# Runs the real sidecar on embedded Kafka around an example's test. Sourced by the tests of
# examples/python and examples/cpp (their sh_tests depend on //examples/testing:run_with_sidecar,
# which brings //sidecar:kafka_sidecar along):
#
#   source examples/testing/run_with_sidecar.sh
#   start_sidecar                        # serves on ${SIDECAR_TARGET}, a unix socket
#   my_app --target="${SIDECAR_TARGET}" >"${out}" 2>&1 || fail "my_app exited with $?"
#   expect_line "${out}" "produced 20"   # fail unless the output has exactly that line
#   stop_sidecar                         # SIGTERM; fail unless it exits 0 within 30 s
#
# fail prints the sidecar's log. An EXIT trap stops a sidecar still running and removes the
# socket's folder. No sleeps: every wait has a deadline.

readonly SIDECAR_BINARY=sidecar/kafka_sidecar
# How long the sidecar gets to exit after SIGTERM (it needs --shutdown_grace_ms and a bit).
readonly SIDECAR_EXIT_TIMEOUT_S=30

SIDECAR_TARGET=""
SIDECAR_LOG="${TEST_TMPDIR}/sidecar.log"
_sidecar_pid=""
_sidecar_dir=""

# fail MESSAGE: reports the failure with the sidecar's log and ends the test.
fail() {
  echo "FAIL: $*" >&2
  echo "---- sidecar log (${SIDECAR_LOG})" >&2
  cat "${SIDECAR_LOG}" >&2 || true
  exit 1
}

# start_sidecar [FLAG...]: starts the sidecar in the background on embedded Kafka, serving on a
# fresh unix socket, SIDECAR_TARGET. Extra flags go to the sidecar. It does not wait for the
# sidecar: clients wait for it to accept connections, with their own deadline.
start_sidecar() {
  # A unix socket path must be short (108 bytes); TEST_TMPDIR can be longer.
  _sidecar_dir="$(mktemp -d /tmp/sidecar-example-XXXXXX)"
  SIDECAR_TARGET="unix:${_sidecar_dir}/s.sock"
  # --metrics_listen= turns off the metrics endpoint: a fixed port would clash between tests.
  "${SIDECAR_BINARY}" --brokers=embedded --listen="${SIDECAR_TARGET}" --metrics_listen= \
    --shutdown_grace_ms=2000 "$@" >"${SIDECAR_LOG}" 2>&1 &
  _sidecar_pid=$!
}

# stop_sidecar: SIGTERM; fails unless the sidecar exits 0 within SIDECAR_EXIT_TIMEOUT_S.
stop_sidecar() {
  [[ -n "${_sidecar_pid}" ]] || fail "stop_sidecar: no sidecar was started"
  kill -TERM "${_sidecar_pid}" 2>/dev/null || fail "the sidecar was gone before SIGTERM"
  timeout "${SIDECAR_EXIT_TIMEOUT_S}" tail --pid="${_sidecar_pid}" -s 0.1 -f /dev/null ||
    fail "the sidecar did not exit within ${SIDECAR_EXIT_TIMEOUT_S} s of SIGTERM"
  local status=0
  wait "${_sidecar_pid}" || status=$?
  _sidecar_pid=""
  [[ "${status}" -eq 0 ]] || fail "the sidecar exited with ${status} after SIGTERM"
}

# expect_line FILE LINE: fails unless FILE has a line that is exactly LINE.
expect_line() {
  grep -qx -- "$2" "$1" || fail "expected the line '$2' in $1"
}

# expect_orders_report FILE COUNT: fails unless FILE is the report of an orders example that
# produced and consumed COUNT records, nacked one (which came again, at attempt 2), nacked one
# to the dead-letter topic on its first attempt and read that dead letter back.
expect_orders_report() {
  local out="$1" count="$2"
  expect_line "${out}" "produced ${count}"
  expect_line "${out}" "consumed ${count}"
  expect_line "${out}" "nacked 1"
  expect_line "${out}" "dead-lettered 1"
  expect_line "${out}" "dead letters read back 1"
  grep -q "dead letter: key=.* reason=.* attempts=1 " "${out}" ||
    fail "expected a dead letter read back, given up on at delivery attempt 1"
  local redelivered
  redelivered="$(sed -n 's/^redelivered \([0-9]*\)$/\1/p' "${out}")"
  [[ -n "${redelivered}" && "${redelivered}" -ge 1 ]] ||
    fail "expected the nacked record to come again (redelivered >= 1), got '${redelivered}'"
  grep -q "attempt=2" "${out}" || fail "expected a record processed at delivery attempt 2"
}

# run_orders_example NAME COUNT STREAMS COMMAND...: runs an orders example (COMMAND, which
# prints its report) against the sidecar; fails unless it exits 0, its report is that of COUNT
# records (expect_orders_report) and STREAMS consume streams subscribed.
run_orders_example() {
  local name="$1" count="$2" streams="$3"
  shift 3
  local out="${TEST_TMPDIR}/example-${name}.out" status=0
  "$@" >"${out}" 2>&1 || status=$?
  cat "${out}"
  [[ "${status}" -eq 0 ]] || fail "the ${name} example exited with ${status}"
  expect_orders_report "${out}" "${count}"
  grep -q "stream ${streams} subscribed" "${out}" ||
    fail "expected ${streams} consume streams to subscribe"
}

_cleanup_sidecar() {
  if [[ -n "${_sidecar_pid}" ]] && kill -0 "${_sidecar_pid}" 2>/dev/null; then
    kill -TERM "${_sidecar_pid}" 2>/dev/null || true
    timeout "${SIDECAR_EXIT_TIMEOUT_S}" tail --pid="${_sidecar_pid}" -s 0.1 -f /dev/null ||
      kill -KILL "${_sidecar_pid}" 2>/dev/null || true
  fi
  if [[ -n "${_sidecar_dir}" ]]; then rm -rf "${_sidecar_dir}"; fi
}
trap _cleanup_sidecar EXIT
