#!/bin/bash
# Builds kubecheck (this folder: kustomize's API and k8s.io/api at go.mod's versions) into
# OUT_DIR/kubecheck, or with `test` runs its unit tests instead. Used by //k8s:kubernetes_test
# and //k8s:kubecheck_test, which run outside Bazel's sandbox ("local") so that Go's module
# cache (filled by tools/install_deps.sh) and build cache are the user's.
#
#   k8s/check/build.sh OUT_DIR [test]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
go="$(command -v go || echo /usr/local/go/bin/go)"
[ -x "${go}" ] || { echo "k8s/check/build.sh: no go on PATH or in /usr/local/go/bin" >&2; exit 1; }
mkdir -p "${out}/src"
cp -L "${here}/go.mod" "${here}/go.sum" "${here}"/*.go "${out}/src/"
cd "${out}/src"
if [ "${2:-}" = test ]; then
  GOFLAGS=-mod=readonly exec "${go}" test -v -count=1 .
fi
GOFLAGS=-mod=readonly exec "${go}" build -o "${out}/kubecheck" .
