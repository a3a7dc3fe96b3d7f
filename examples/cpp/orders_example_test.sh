#!/bin/bash
# Starts the real sidecar on embedded Kafka, runs orders_example against it and checks what it
# reports: the same lines as the Python example's test. It runs twice: producing with
# ProduceBatchStream (batches of 3), then with ProduceStream, each on its own topic and group.
# --max_pending=4 makes the producer wait for answers (backpressure). No sleeps: the example
# waits for the sidecar to accept connections (with a deadline), and the shutdown is awaited
# with a deadline.
set -euo pipefail
source examples/testing/run_with_sidecar.sh

readonly COUNT=20
readonly EXAMPLE=examples/cpp/orders_example

start_sidecar

# run_example NAME FLAG...: runs the example with FLAGs and checks its report.
run_example() {
  local name="$1"
  shift
  local out="${TEST_TMPDIR}/example-${name}.out"
  local status=0
  "${EXAMPLE}" --target="${SIDECAR_TARGET}" --count="${COUNT}" --max_pending=4 \
    --timeout_s=120 "$@" >"${out}" 2>&1 || status=$?
  cat "${out}"
  [[ "${status}" -eq 0 ]] || fail "orders_example (${name}) exited with ${status}"
  expect_orders_report "${out}" "${COUNT}"
  expect_line "${out}" "  the sidecar ended the stream: OK"
}

run_example batches --produce=batches --batch_size=3 --topic=orders --group=orders-example-test
run_example stream --produce=stream --topic=orders-stream --group=orders-stream-test

# SIGTERM: the sidecar shuts down cleanly and exits 0.
stop_sidecar
echo "PASS"
