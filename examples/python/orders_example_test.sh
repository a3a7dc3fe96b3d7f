#!/bin/bash
# Starts the real sidecar on embedded Kafka, runs orders_example.py against it with Debian's
# /usr/bin/python3 and checks what it reports. No sleeps: the example waits for the sidecar to
# accept connections (with a deadline), and the shutdown is awaited with a deadline.
set -euo pipefail

readonly COUNT=20
readonly SIDECAR=sidecar/kafka_sidecar
readonly EXAMPLE=examples/python/orders_example.py

fail() {
  echo "FAIL: $*" >&2
  echo "---- sidecar log" >&2
  cat "${TEST_TMPDIR}/sidecar.log" >&2 || true
  exit 1
}

# A unix socket path must be short (108 bytes); TEST_TMPDIR can be longer.
sockdir="$(mktemp -d /tmp/orders-example-XXXXXX)"
target="unix:${sockdir}/s.sock"
sidecar_pid=""

stop_sidecar() {
  if [[ -n "${sidecar_pid}" ]] && kill -0 "${sidecar_pid}" 2>/dev/null; then
    kill -TERM "${sidecar_pid}" 2>/dev/null || true
    # Wait for it to exit, with a deadline; then make sure.
    timeout 30 tail --pid="${sidecar_pid}" -s 0.1 -f /dev/null || kill -KILL "${sidecar_pid}" 2>/dev/null || true
  fi
}
cleanup() {
  stop_sidecar
  rm -rf "${sockdir}"
}
trap cleanup EXIT

# --metrics_listen= turns off the metrics endpoint (a fixed port would clash between tests);
# --undefok keeps this working with a sidecar that has no such flag.
"${SIDECAR}" --brokers=embedded --listen="${target}" --shutdown_grace_ms=2000 \
  --undefok=metrics_listen --metrics_listen= >"${TEST_TMPDIR}/sidecar.log" 2>&1 &
sidecar_pid=$!

out="${TEST_TMPDIR}/example.out"
status=0
PYTHONPATH="${PWD}/examples/python" /usr/bin/python3 "${EXAMPLE}" --target="${target}" \
  --count="${COUNT}" --topic=orders --group=orders-example-test --timeout_s=120 \
  >"${out}" 2>&1 || status=$?
cat "${out}"
[[ "${status}" -eq 0 ]] || fail "orders_example.py exited with ${status}"

expect_line() {
  grep -qx -- "$1" "${out}" || fail "expected the line '$1' in the example's output"
}
expect_line "produced ${COUNT}"
expect_line "consumed ${COUNT}"
expect_line "nacked 1"
expect_line "dead-lettered 1"
redelivered="$(sed -n 's/^redelivered \([0-9]*\)$/\1/p' "${out}")"
[[ -n "${redelivered}" && "${redelivered}" -ge 1 ]] ||
  fail "expected the nacked record to come again (redelivered >= 1), got '${redelivered}'"
grep -q "attempt=2" "${out}" || fail "expected a record processed at delivery attempt 2"

# SIGTERM: the sidecar shuts down cleanly and exits 0.
kill -TERM "${sidecar_pid}"
sidecar_status=0
timeout 30 tail --pid="${sidecar_pid}" -s 0.1 -f /dev/null || fail "the sidecar did not exit within 30 s of SIGTERM"
wait "${sidecar_pid}" || sidecar_status=$?
sidecar_pid=""
[[ "${sidecar_status}" -eq 0 ]] || fail "the sidecar exited with ${sidecar_status} after SIGTERM"
echo "PASS"
