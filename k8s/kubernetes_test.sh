#!/bin/bash
# //k8s:kubernetes_test: every kustomization under k8s/ renders with kustomize's API, and every
# manifest and rendered object decodes strictly into its Kubernetes type (k8s/check/main.go).
set -euo pipefail
root="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-kafka_sidecar}"
# The user's Go caches (Bazel gives tests a HOME of their own).
HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
export HOME
"${root}/k8s/check/build.sh" "${TEST_TMPDIR}/kubecheck"
# A real copy: kustomize refuses files whose real path (runfiles are symlinks) lies outside the
# kustomization's folder.
mkdir -p "${TEST_TMPDIR}/tree"
cp -rL "${root}/k8s" "${TEST_TMPDIR}/tree/"

# The check must be able to fail: on a broken copy, one field misspelled in a Deployment and one
# in a kustomization, it has to name both.
broken="${TEST_TMPDIR}/broken"
mkdir -p "${broken}"
cp -r "${TEST_TMPDIR}/tree/k8s" "${broken}/"
sed -i 's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/' \
  "${broken}/k8s/example/deployment-native-sidecar.yaml"
sed -i 's/^patches:/patchez:/' "${broken}/k8s/components/kafka-sidecar/kustomization.yaml"
if XML_OUTPUT_FILE= "${TEST_TMPDIR}/kubecheck/kubecheck" --root="${broken}" >"${TEST_TMPDIR}/broken.out" 2>&1; then
  cat "${TEST_TMPDIR}/broken.out"
  echo "FAIL: kubecheck passed a copy with misspelled fields"
  exit 1
fi
for field in terminationGracePeriodSecond patchez; do
  grep -q "unknown field \"${field}\"" "${TEST_TMPDIR}/broken.out" || {
    cat "${TEST_TMPDIR}/broken.out"
    echo "FAIL: kubecheck did not name the misspelled field ${field}"
    exit 1
  }
done

exec "${TEST_TMPDIR}/kubecheck/kubecheck" --root="${TEST_TMPDIR}/tree"
