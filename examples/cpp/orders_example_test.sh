#!/bin/bash
# Starts the real sidecar on embedded Kafka, runs orders_example against it and checks what it
# reports: the same lines as the Python example's test. --max_pending=4 makes the producer wait
# for answers (backpressure). No sleeps: the example waits for the sidecar to accept connections
# (with a deadline), and the shutdown is awaited with a deadline.
set -euo pipefail
source examples/testing/run_with_sidecar.sh

readonly COUNT=20
readonly EXAMPLE=examples/cpp/orders_example

start_sidecar

out="${TEST_TMPDIR}/example.out"
status=0
"${EXAMPLE}" --target="${SIDECAR_TARGET}" --count="${COUNT}" --max_pending=4 --topic=orders \
  --group=orders-example-test --timeout_s=120 >"${out}" 2>&1 || status=$?
cat "${out}"
[[ "${status}" -eq 0 ]] || fail "orders_example exited with ${status}"

expect_orders_report "${out}" "${COUNT}"
expect_line "${out}" "  the sidecar ended the stream: OK"

# SIGTERM: the sidecar shuts down cleanly and exits 0.
stop_sidecar
echo "PASS"
