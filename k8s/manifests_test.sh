#!/bin/bash
# //k8s:manifests_test: checks the manifests in k8s/ and the Dockerfile against the sidecar
# binary (its --helpfull), with Debian's /usr/bin/python3, which has python3-yaml (the python3 on
# PATH may be another one without it). See k8s/check_manifests.py for the checks.
set -euo pipefail
root="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-kafka_sidecar}"
exec /usr/bin/python3 "${root}/k8s/check_manifests.py" --root="${root}" \
  --binary="${root}/sidecar/kafka_sidecar"
