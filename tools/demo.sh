#!/usr/bin/env bash
# The quick start: installs what is missing, builds, starts the sidecar on embedded (in-memory)
# Kafka, produces a few keyed records through it, reads them back with kcat, consumes and acks
# them through the sidecar, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install_deps.sh
bazel build //sidecar:kafka_sidecar //sidecar:kafka_sidecar_cli 2>&1 | tail -n 1

LISTEN="${DEMO_LISTEN:-127.0.0.1:50051}"
CLI=(bazel-bin/sidecar/kafka_sidecar_cli --target="$LISTEN" --timeout_ms=20000)
log="$(mktemp -t kafka-sidecar-demo.XXXXXX.log)"

echo "== starting the sidecar on embedded Kafka (log: $log)"
bazel-bin/sidecar/kafka_sidecar --brokers=embedded --listen="$LISTEN" 2>"$log" &
sidecar=$!
trap 'kill -TERM $sidecar 2>/dev/null || true' EXIT

if ! "${CLI[@]}" health >/dev/null; then
  echo "the sidecar did not become ready:"; cat "$log"; exit 1
fi
bootstrap="$(sed -n 's/.*Bootstrap servers: \([^ ]*\).*/\1/p' "$log" | head -n 1)"
echo "   serving on $LISTEN; embedded Kafka at $bootstrap"

echo "== producing 5 keyed records through the sidecar (gRPC ProduceStream)"
"${CLI[@]}" produce --topic=demo \
  user-1=signed-up user-2=signed-up user-1=ordered-book user-3=signed-up user-1=paid

echo "== reading them back from Kafka with kcat, a plain Kafka client"
kcat -b "$bootstrap" -C -t demo -o beginning -e -q \
  -f '   partition %p offset %o key %k value %s\n'

echo "== consuming them through the sidecar (gRPC Consume, group demo-app), acking each"
"${CLI[@]}" consume --group=demo-app --topic=demo --max_records=5 2>&1 | sed 's/^/   /'

echo "== stopping the sidecar (SIGTERM)"
kill -TERM $sidecar
wait $sidecar
trap - EXIT
echo "   stopped cleanly; last log lines:"
tail -n 3 "$log" | sed 's/^/   /'
