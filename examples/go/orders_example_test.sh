#!/bin/bash
# Builds the Go example with build.sh (protoc-gen-go, protoc-gen-go-grpc and grpc-go at go.mod's
# versions), starts the real sidecar on embedded Kafka, runs the example against it with three
# consume streams and checks what it reports. No sleeps: the example waits for the sidecar to
# accept connections (with a deadline), and the shutdown is awaited with a deadline.
set -euo pipefail
source examples/testing/run_with_sidecar.sh

readonly COUNT=20

# Go's module cache (filled by tools/install_deps.sh) and build cache are the user's: the test
# runs outside Bazel's sandbox (tag "local"), and Bazel gives tests a HOME of their own.
HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
export HOME GOFLAGS=-mod=readonly
build_log="${TEST_TMPDIR}/build.log"
examples/go/build.sh "${TEST_TMPDIR}/go" >"${build_log}" 2>&1 ||
  { cat "${build_log}"; fail "examples/go/build.sh failed"; }

start_sidecar
run_orders_example go "${COUNT}" 3 "${TEST_TMPDIR}/go/orders_example" \
  --target="${SIDECAR_TARGET}" --count="${COUNT}" --batch_size=3 --streams=3 --topic=orders \
  --group=orders-go-example-test --timeout=120s

# SIGTERM: the sidecar shuts down cleanly and exits 0.
stop_sidecar
echo "PASS"
