#!/bin/bash
# //k8s:kubecheck_test: kubecheck's unit tests (k8s/check/check_test.go), with go test.
set -euo pipefail
root="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-kafka_sidecar}"
HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"  # the user's Go caches
export HOME
exec "${root}/k8s/check/build.sh" "${TEST_TMPDIR}/kubecheck" test
