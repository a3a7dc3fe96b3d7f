#!/bin/bash
# Starts the real sidecar on embedded Kafka, runs orders_example.py against it with Debian's
# /usr/bin/python3 and checks what it reports. No sleeps: the example waits for the sidecar to
# accept connections (with a deadline), and the shutdown is awaited with a deadline.
set -euo pipefail
source examples/testing/run_with_sidecar.sh

readonly COUNT=20
readonly EXAMPLE=examples/python/orders_example.py

start_sidecar

out="${TEST_TMPDIR}/example.out"
status=0
PYTHONPATH="${PWD}/examples/python" /usr/bin/python3 "${EXAMPLE}" --target="${SIDECAR_TARGET}" \
  --count="${COUNT}" --topic=orders --group=orders-example-test --timeout_s=120 \
  >"${out}" 2>&1 || status=$?
cat "${out}"
[[ "${status}" -eq 0 ]] || fail "orders_example.py exited with ${status}"

expect_orders_report "${out}" "${COUNT}"

# SIGTERM: the sidecar shuts down cleanly and exits 0.
stop_sidecar
echo "PASS"
