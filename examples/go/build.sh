#!/bin/bash
# Builds the Go example into OUT_DIR/orders_example (default examples/go/out, which git ignores):
# generates the gRPC code from proto/kafka_sidecar.proto with protoc (Debian's
# protobuf-compiler) and protoc-gen-go and protoc-gen-go-grpc at the versions go.mod pins as its
# tools, into a copy of this module, then builds it with grpc-go (go.mod, go.sum). The generated
# code is never committed.
#
#   examples/go/build.sh [OUT_DIR]
#   examples/go/out/orders_example --target=localhost:50051 --count=10
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "${1:-${here}/out}"
out="$(cd "${1:-${here}/out}" && pwd)"
go="$(command -v go || echo /usr/local/go/bin/go)"
[ -x "${go}" ] || { echo "build.sh: no go on PATH or in /usr/local/go/bin" >&2; exit 1; }
proto="${here}/../../proto/kafka_sidecar.proto"
module=kafka-sidecar/examples/go

src="${out}/src"
rm -rf "${src}"
mkdir -p "${src}" "${out}/bin"
cp "${here}/go.mod" "${here}/go.sum" "${here}"/*.go "${src}/"
cd "${src}"
"${go}" build -o "${out}/bin/" google.golang.org/protobuf/cmd/protoc-gen-go \
  google.golang.org/grpc/cmd/protoc-gen-go-grpc
protoc --proto_path="$(dirname "${proto}")" \
  --plugin=protoc-gen-go="${out}/bin/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="${out}/bin/protoc-gen-go-grpc" \
  --go_out=. --go_opt=module="${module}" --go_opt=Mkafka_sidecar.proto="${module}/kafkasidecarv1" \
  --go-grpc_out=. --go-grpc_opt=module="${module}" \
  --go-grpc_opt=Mkafka_sidecar.proto="${module}/kafkasidecarv1" \
  "$(basename "${proto}")"
"${go}" build -o "${out}/orders_example" .
