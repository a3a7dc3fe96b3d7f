#!/bin/bash
# //k8s:manifests_test: checks the manifests in k8s/ and the Dockerfile against the sidecar
# binary (its --helpfull), with Debian's /usr/bin/python3, which has python3-yaml (the python3 on
# PATH may be another one without it), on the kustomizations as kubecheck (k8s/check) renders
# them. See k8s/check_manifests.py for the checks.
set -euo pipefail
root="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-kafka_sidecar}"
HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
export HOME
"${root}/k8s/check/build.sh" "${TEST_TMPDIR}/kubecheck"
mkdir -p "${TEST_TMPDIR}/tree" "${TEST_TMPDIR}/rendered"
cp -rL "${root}/k8s" "${TEST_TMPDIR}/tree/"
# Its verdict is //k8s:kubernetes_test's; here it only renders (a kustomization that does not
# render fails its rendered/ check below).
XML_OUTPUT_FILE= "${TEST_TMPDIR}/kubecheck/kubecheck" --root="${TEST_TMPDIR}/tree" \
  --render_to="${TEST_TMPDIR}/rendered" >/dev/null || true
exec /usr/bin/python3 "${root}/k8s/check_manifests.py" --root="${root}" \
  --binary="${root}/sidecar/kafka_sidecar" --rendered="${TEST_TMPDIR}/rendered"
