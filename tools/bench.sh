#!/usr/bin/env bash
# The benchmark: the sidecar binary, a client process and Kafka as three processes (as in a
# pod). For each path the same work is done directly with librdkafka and through the sidecar in
# one run, alternating rounds; medians are printed.
#
#   tools/bench.sh [--kafka=mock|real] [--records=200000] [--rounds=3] [--batch=100]
#                  [--only=produce,consume,latency,subscribe,poison] [--value_size=100]
#                  [--sidecar_flag=--flag=value ...]
#
# --kafka=mock (the default) is librdkafka's mock cluster of 3 brokers; --kafka=real is one
# Apache Kafka 3.9 broker (KRaft, jars from tools/fetch_kafka.sh) on this machine.
#
# CPU per record of the sidecar is read from /proc/<pid>/stat around each sidecar round; the
# client's own CPU is what a direct librdkafka client costs for the same work. --only=poison
# compares one stream with a 10 s retry policy, with and without one key (of 1,000) nacked on
# every delivery: the other keys' throughput should not change.
set -euo pipefail
cd "$(dirname "$0")/.."

kafka=mock
records=200000
rounds=3
only="produce,consume,latency,subscribe"  # poison: on request
value_size=100
batch=100
sidecar_flags=()  # more flags for the sidecar (a later --kafka_config replaces the bench's)
made_by_extra=""
for arg in "$@"; do
  case "$arg" in
    --kafka=*) kafka="${arg#*=}" ;;
    --records=*) records="${arg#*=}" ;;
    --rounds=*) rounds="${arg#*=}" ;;
    --only=*) only="${arg#*=}" ;;
    --value_size=*) value_size="${arg#*=}" ;;
    --batch=*) batch="${arg#*=}" ;;
    --sidecar_flag=*) sidecar_flags+=("${arg#*=}"); made_by_extra+=" $arg" ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
# A sidecar stream holds at most --max_pending_produces records waiting for Kafka; the direct
# producer is also measured with that window, to show what the window alone costs.
window=1000
for flag in "${sidecar_flags[@]}"; do
  case "$flag" in --max_pending_produces=*) window="${flag#*=}" ;; esac
done
wants() { [[ ",$only," == *",$1,"* ]]; }
case "$kafka" in
  mock) kafka_target=//testing:mock_kafka; kafka_name="mock cluster of 3 brokers" ;;
  real) kafka_target=//testing/kafka:kafka_server; kafka_name="Apache Kafka 3.9, one KRaft broker" ;;
  *) echo "bench.sh: --kafka must be mock or real, got '$kafka'" >&2; exit 2 ;;
esac

tools/install_deps.sh >/dev/null
bazel build -c opt //sidecar:kafka_sidecar "$kafka_target" //testing:bench_client 2>&1 |
  grep -E '^(ERROR|FAILED)' && exit 1
bin="$(bazel info -c opt bazel-bin 2>/dev/null)"
work="$(mktemp -d -t kafka-sidecar-bench.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits until `file` has a line matching `pattern`, or the process `pid` dies, or `seconds`
# (30 by default) pass.
await_line() {
  local file="$1" pattern="$2" pid="$3" deadline=$((SECONDS + ${4:-30}))
  until grep -q "$pattern" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "bench.sh: process $pid died; its log:" >&2; tail -20 "$file" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "bench.sh: timed out waiting for '$pattern' in $file" >&2; exit 1; }
    sleep 0.05  # between looks at the file, within the deadline above
  done
}

partitions=24
topics="bench-consume:$partitions,bench-stream:6,bench-batch:6,bench-direct:6,bench-subscribe:6"
for ((round = 1; round <= rounds; round++)); do
  topics+=",latency-direct-$round:6,latency-sidecar-$round:6"  # a fresh topic for each run
done
if [ "$kafka" = mock ]; then
  "$bin/testing/mock_kafka" --brokers=3 --topics="$topics" >"$work/kafka.out" 2>"$work/kafka.log" &
else
  "$bin/testing/kafka/kafka_server" --topics="$topics" >"$work/kafka.out" 2>"$work/kafka.log" &
fi
pids+=($!)
await_line "$work/kafka.out" ':' "${pids[-1]}" 120
brokers="$(head -n 1 "$work/kafka.out")"

port="$(free_port)"
"$bin/sidecar/kafka_sidecar" --brokers="$brokers" --listen="127.0.0.1:$port" \
  --metrics_listen= --health_check_interval_ms=60000 \
  --kafka_config="fetch.wait.max.ms=10,session.timeout.ms=6000,heartbeat.interval.ms=500" \
  "${sidecar_flags[@]}" >"$work/sidecar.log" 2>&1 &
sidecar=$!
pids+=("$sidecar")
await_line "$work/sidecar.log" 'serving kafka_sidecar.v1' "$sidecar"
idle_rss_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$sidecar/status")"

client() { "$bin/testing/bench_client" --brokers="$brokers" --target="127.0.0.1:$port" \
  --value_size="$value_size" "$@"; }
sidecar_ticks() { awk '{print $14 + $15}' "/proc/$sidecar/stat"; }
hz="$(getconf CLK_TCK)"
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

# Runs the client once; prints "records/s client_cpu_us_per_record sidecar_cpu_us_per_record
# [p50 p99]".
measure() {
  local before after out
  before="$(sidecar_ticks)"
  out="$(client "$@")" || { echo "bench.sh: client $* failed; sidecar log:" >&2; tail -20 "$work/sidecar.log" >&2; exit 1; }
  after="$(sidecar_ticks)"
  python3 - "$out" "$before" "$after" "$hz" <<'EOF'
import re, sys
out, before, after, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
f = dict(re.findall(r"(\w+)=([0-9.]+)", out))
n = float(f["records"])
line = [n / max(float(f["seconds"]), 1e-9), float(f["cpu_us"]) / n, (after - before) * 1e6 / hz / n]
if "p50_us" in f:
    line += [float(f["p50_us"]), float(f["p99_us"])]
print(" ".join("%.3f" % x for x in line))
EOF
}
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.3f" % statistics.median(v))' "$@"; }
col() { awk -v c="$1" '{print $c}'; }

declare -A results  # name -> lines of "rate client_cpu sidecar_cpu [p50 p99]"
run() {  # name, client args...
  local name="$1"; shift
  results[$name]+="$(measure "$@")"$'\n'
}

echo "kafka-sidecar benchmark: $records records of $value_size bytes, $rounds rounds, $kafka_name"
echo "(sidecar, client and brokers are separate processes; $(nproc) cores)"
if wants consume || wants poison; then
  client --mode=produce-direct --topic=bench-consume --records="$records" >/dev/null
fi
for ((round = 1; round <= rounds; round++)); do
  if wants produce; then
    run produce-direct --mode=produce-direct --topic=bench-direct --records="$records"
    run produce-stream --mode=produce-stream --topic=bench-stream --records="$records"
    run produce-direct2 --mode=produce-direct --topic=bench-direct --records="$records"
    run produce-window --mode=produce-direct --topic=bench-direct --records="$records" --window="$window"
    run produce-batch --mode=produce-batch --topic=bench-batch --records="$records" --batch="$batch"
  fi
  if wants consume; then
    run consume-direct --mode=consume-direct --topic=bench-consume --group="direct-$round" --records="$records"
    run consume-1 --mode=consume-sidecar --topic=bench-consume --group="one-$round" --streams=1 --records="$records"
    run consume-4 --mode=consume-sidecar --topic=bench-consume --group="four-$round" --streams=4 --records="$records"
  fi
  if wants poison; then
    run poison-none --mode=consume-sidecar --topic=bench-consume --group="calm-$round" --streams=1 --records="$records" --min_backoff_ms=10000
    run poison-one --mode=consume-sidecar --topic=bench-consume --group="poison-$round" --streams=1 --records="$records" --min_backoff_ms=10000 --nack_key=key-0
  fi
  if wants latency; then
    run latency-direct --mode=latency-direct --topic="latency-direct-$round" --group="ldirect-$round" --rate=1000 --seconds=5
    run latency-sidecar --mode=latency-sidecar --topic="latency-sidecar-$round" --group="lsidecar-$round" --rate=1000 --seconds=5
  fi
done
if wants subscribe; then
  for ((round = 1; round <= rounds; round++)); do
    run subscribe --mode=subscribe --topic=bench-subscribe --group="many-$round" --streams=2000
  done
fi
loaded_rss_kb="$(awk '/^VmHWM/ {print $2}' "/proc/$sidecar/status")"

get() { echo -n "${results[$1]:-}" | col "$2"; }
med() { local v; v="$(get "$1" "$2")"; [ -n "$v" ] && median $v || echo "-"; }
pct() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print("%.0f%%" % (100*a/b))' "$1" "$2"; }
k() { python3 -c 'import sys; print("%.0f k/s" % (float(sys.argv[1]) / 1000))' "$1"; }

echo
echo "| figure | direct librdkafka | through the sidecar | ratio |"
echo "|---|---|---|---|"
if wants produce; then
  pd="$(median $(get produce-direct 1) $(get produce-direct2 1))"
  pdc="$(median $(get produce-direct 2) $(get produce-direct2 2))"
  echo "| produce, ProduceStream | $(k "$pd") | $(k "$(med produce-stream 1)") | $(pct "$(med produce-stream 1)" "$pd") |"
  echo "| produce, ProduceBatchStream ($batch a batch) | $(k "$pd") | $(k "$(med produce-batch 1)") | $(pct "$(med produce-batch 1)" "$pd") |"
  echo "| produce, direct with a window of $window records (as a stream has) | $(k "$(med produce-window 1)") | | $(pct "$(med produce-batch 1)" "$(med produce-window 1)") (batch stream / windowed direct) |"
  echo "| CPU per produced record, ProduceStream | ${pdc} us (client) | $(med produce-stream 3) us (sidecar) | |"
  echo "| CPU per produced record, ProduceBatchStream | ${pdc} us (client) | $(med produce-batch 3) us (sidecar) | |"
fi
if wants consume; then
  cd_="$(med consume-direct 1)"
  echo "| consume, 1 stream, acking each batch | $(k "$cd_") | $(k "$(med consume-1 1)") | $(pct "$(med consume-1 1)" "$cd_") |"
  echo "| consume, 4 streams of one subscription | - | $(k "$(med consume-4 1)") | $(pct "$(med consume-4 1)" "$(med consume-1 1)") of 1 stream |"
  echo "| CPU per consumed record, 1 stream | $(med consume-direct 2) us (client) | $(med consume-1 3) us (sidecar) | |"
  echo "| CPU per consumed record, 4 streams | - | $(med consume-4 3) us (sidecar) | |"
fi
if wants poison; then
  echo "| consume, 1 stream, retry policy of 10 s: the other keys while key-0 (1 of 1,000) is nacked every time | $(k "$(med poison-none 1)") with no nack | $(k "$(med poison-one 1)") | $(pct "$(med poison-one 1)" "$(med poison-none 1)") |"
fi
if wants latency; then
  d50="$(med latency-direct 4)"; d99="$(med latency-direct 5)"
  s50="$(med latency-sidecar 4)"; s99="$(med latency-sidecar 5)"
  python3 - "$d50" "$d99" "$s50" "$s99" <<'EOF'
import sys
d50, d99, s50, s99 = (float(x) / 1000 for x in sys.argv[1:])
print("| end-to-end latency at 1,000 records/s, p50 / p99 | %.2f / %.2f ms | %.2f / %.2f ms | added +%.2f ms p50, +%.2f ms p99 |"
      % (d50, d99, s50, s99, s50 - d50, s99 - d99))
EOF
fi
if wants subscribe; then
  echo "| 2,000 streams of one subscription until all are Subscribed | - | $(python3 -c 'import sys; print("%.2f s" % (2000 / float(sys.argv[1])))' "$(med subscribe 1)") | |"
fi
echo "| sidecar RSS, idle / at the end (peak) | - | $((idle_rss_kb / 1024)) MB / $((loaded_rss_kb / 1024)) MB | |"
echo
echo "made by: tools/bench.sh --kafka=$kafka --records=$records --rounds=$rounds --batch=$batch --only=$only$made_by_extra"
