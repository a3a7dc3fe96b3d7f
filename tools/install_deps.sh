#!/usr/bin/env bash
# Installs exactly the Debian 12 packages that the build, the tests and the demo need, then
# Apache Kafka's broker for the real-Kafka tests (tools/fetch_kafka.sh, from Maven Central).
# Idempotent: when everything is already there it does nothing (no apt-get update, no Maven).
set -euo pipefail

PACKAGES=(
  bazel-bootstrap        # Bazel 4.2.3
  g++ clang-14 libclang-rt-14-dev  # compilers; clang runtime for the sanitizer config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librdkafka-dev
  libabsl-dev libgoogle-glog-dev libgflags-dev
  libgtest-dev libgmock-dev
  libgoogle-perftools-dev  # tcmalloc, the sidecar binary's malloc
  libcpp-httplib-dev     # the /metrics, /healthz and /readyz HTTP server
  python3 python3-grpcio python3-protobuf python3-yaml  # Python client example; the metric-query check
  kcat                   # the plain Kafka client of the demo
  procps                 # ps/pgrep used by tests and the demo scripts
  openjdk-17-jre-headless maven openssl  # the real Kafka broker of the tests; its certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

"$(dirname "$0")/fetch_kafka.sh"

# The Go modules of the Go example and of the manifests' checker (their go.mod and go.sum pin
# them) into Go's module cache, from the Go module proxy: their tests then build offline. Go
# itself (1.26) comes with the machine; Debian 12's is too old.
go="$(command -v go || echo /usr/local/go/bin/go)"
if [ ! -x "$go" ]; then
  echo "install_deps: no Go toolchain (go on PATH or /usr/local/go/bin/go); examples/go and" \
    "k8s/check need Go 1.26 or later from https://go.dev/dl" >&2
  exit 1
fi
for module in examples/go k8s/check; do  # the Go example; the manifests' checker
  (cd "$(dirname "$0")/../${module}" && "$go" mod download)
done
