#!/bin/bash
# Starts the real sidecar on embedded Kafka, runs orders_example.py against it with Debian's
# /usr/bin/python3 and checks what it reports. It runs twice: producing with ProduceBatchStream
# (batches of 3), then with ProduceStream, each on its own topic and group. No sleeps: the
# example waits for the sidecar to accept connections (with a deadline), and the shutdown is
# awaited with a deadline.
set -euo pipefail
source examples/testing/run_with_sidecar.sh

readonly COUNT=20
readonly EXAMPLE=examples/python/orders_example.py

start_sidecar

# run_example NAME FLAG...: runs the example with FLAGs and checks its report.
run_example() {
  local name="$1"
  shift
  local out="${TEST_TMPDIR}/example-${name}.out"
  local status=0
  PYTHONPATH="${PWD}/examples/python" /usr/bin/python3 "${EXAMPLE}" \
    --target="${SIDECAR_TARGET}" --count="${COUNT}" --timeout_s=120 "$@" \
    >"${out}" 2>&1 || status=$?
  cat "${out}"
  [[ "${status}" -eq 0 ]] || fail "orders_example.py (${name}) exited with ${status}"
  expect_orders_report "${out}" "${COUNT}"
}

run_example batches --produce=batches --batch_size=3 --topic=orders --group=orders-example-test
run_example stream --produce=stream --topic=orders-stream --group=orders-stream-test

# SIGTERM: the sidecar shuts down cleanly and exits 0.
stop_sidecar
echo "PASS"
