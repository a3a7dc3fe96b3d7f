#!/usr/bin/env bash
# Fetches Apache Kafka's broker (its jars and their runtime dependencies, pinned in
# testing/kafka/pom.xml) from Maven Central into the cache the real-Kafka tests start it from:
#
#   tools/fetch_kafka.sh [LINE...]     LINE: 3.9 (the default suite) and 4.1; none: both
#
# The cache is $KAFKA_SIDECAR_KAFKA_CACHE, or ~/.cache/kafka-sidecar; each line goes to
# kafka-LINE/libs there. A line already fetched from the same pom is left alone (no network).
set -euo pipefail
cd "$(dirname "$0")/.."

pom="$PWD/testing/kafka/pom.xml"
cache="${KAFKA_SIDECAR_KAFKA_CACHE:-$HOME/.cache/kafka-sidecar}"
lines=("$@")
[ ${#lines[@]} -gt 0 ] || lines=(3.9 4.1)
stamp="$(sha256sum "$pom" | cut -d' ' -f1)"

for line in "${lines[@]}"; do
  case "$line" in
    3.9|4.1) ;;
    *) echo "fetch_kafka: unknown Kafka line '$line' (known: 3.9, 4.1)" >&2; exit 2 ;;
  esac
  dir="$cache/kafka-$line"
  if [ "$(cat "$dir/.fetched" 2>/dev/null)" = "$stamp" ]; then continue; fi
  echo "fetch_kafka: fetching Apache Kafka $line from Maven Central into $dir" >&2
  work="$(mktemp -d)"
  # Maven runs on a copy of the pom, so nothing is written inside the repository.
  cp "$pom" "$work/pom.xml"
  if ! mvn -B -f "$work/pom.xml" -P "kafka-$line" package -Dkafka.libs="$work/libs" \
      >"$work/maven.log" 2>&1; then
    grep -E 'ERROR|FAIL' "$work/maven.log" | head -n 20 >&2
    rm -rf "$work"
    echo "fetch_kafka: Maven could not fetch Kafka $line (see the errors above)" >&2
    exit 1
  fi
  mkdir -p "$cache"
  rm -rf "$dir"
  mkdir "$dir"
  mv "$work/libs" "$dir/libs"
  echo "$stamp" >"$dir/.fetched"
  rm -rf "$work"
done
