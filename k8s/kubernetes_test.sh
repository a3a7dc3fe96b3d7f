#!/bin/bash
# //k8s:kubernetes_test: kubecheck (k8s/check) on the manifests under k8s/ and the Dockerfile,
# against the sidecar binary: every kustomization renders with kustomize's API, every manifest
# and rendered object decodes strictly into its Kubernetes type, and the project's own checks
# pass (flags, probes, ports, grace, resources, security; see k8s/check/main.go).
set -euo pipefail
root="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-kafka_sidecar}"
# The user's Go caches (Bazel gives tests a HOME of their own).
HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
export HOME
"${root}/k8s/check/build.sh" "${TEST_TMPDIR}/kubecheck"
kubecheck=("${TEST_TMPDIR}/kubecheck/kubecheck" --binary="${root}/sidecar/kafka_sidecar"
  --dockerfile="${root}/Dockerfile")
# A real copy: kustomize refuses files whose real path (runfiles are symlinks) lies outside the
# kustomization's folder.
mkdir -p "${TEST_TMPDIR}/tree"
cp -rL "${root}/k8s" "${TEST_TMPDIR}/tree/"

# The check must be able to fail: on a broken copy it has to name each break, Kubernetes' (a
# field misspelled in a Deployment and in a kustomization) and the project's (a flag the binary
# does not have in the component's flag file, a liveness probe off the health port).
broken="${TEST_TMPDIR}/broken"
mkdir -p "${broken}"
cp -r "${TEST_TMPDIR}/tree/k8s" "${broken}/"
sed -i 's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/' \
  "${broken}/k8s/example/deployment-native-sidecar.yaml"
sed -i 's/^patches:/patchez:/' "${broken}/k8s/components/kafka-sidecar/kustomization.yaml"
sed -i 's/--max_buffered_records=/--max_bufered_records=/' \
  "${broken}/k8s/components/kafka-sidecar/configmap.yaml"
sed -i '/livenessProbe:/,/port:/s/port: 50052/port: 50053/' "${broken}/k8s/example/deployment-classic.yaml"
if XML_OUTPUT_FILE= "${kubecheck[@]}" --root="${broken}" >"${TEST_TMPDIR}/broken.out" 2>&1; then
  cat "${TEST_TMPDIR}/broken.out"
  echo "FAIL: kubecheck passed a copy with misspelled fields and flags"
  exit 1
fi
for want in 'unknown field "terminationGracePeriodSecond"' 'unknown field "patchez"' \
  'flags the binary does not accept: --max_bufered_records' \
  'livenessProbe port 50053 differs from --health_listen=0.0.0.0:50052'; do
  grep -qF "${want}" "${TEST_TMPDIR}/broken.out" || {
    cat "${TEST_TMPDIR}/broken.out"
    echo "FAIL: kubecheck did not say: ${want}"
    exit 1
  }
done

exec "${kubecheck[@]}" --root="${TEST_TMPDIR}/tree"
