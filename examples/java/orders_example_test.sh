#!/bin/bash
# Builds the Java example with Maven (grpc-java, protobuf and the protoc plugins at the pom's
# fixed versions, from Maven Central into the user's ~/.m2 on the first run), starts the real
# sidecar on embedded Kafka, runs the example against it with three consume streams and checks
# what it reports. No sleeps: the example waits for the sidecar to accept connections (with a
# deadline), and the shutdown is awaited with a deadline.
set -euo pipefail
source examples/testing/run_with_sidecar.sh

readonly COUNT=20

# Maven's repository is the user's: the test runs outside Bazel's sandbox (tag "local"), and
# Bazel gives tests a HOME of their own. The build happens in a copy (runfiles stay as they are).
HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
export HOME
project="${TEST_TMPDIR}/java"
mkdir -p "${project}"
cp -rL examples/java/pom.xml examples/java/src "${project}/"
build_log="${TEST_TMPDIR}/build.log"
mvn -q -B -f "${project}/pom.xml" -Dproto.dir="${PWD}/proto" package >"${build_log}" 2>&1 ||
  { cat "${build_log}"; fail "mvn package failed"; }

start_sidecar
run_orders_example java "${COUNT}" 3 java -jar "${project}/target/orders-example.jar" \
  --target="${SIDECAR_TARGET}" --count="${COUNT}" --batch_size=3 --streams=3 --topic=orders \
  --group=orders-java-example-test --timeout_s=120

# SIGTERM: the sidecar shuts down cleanly and exits 0.
stop_sidecar
echo "PASS"
