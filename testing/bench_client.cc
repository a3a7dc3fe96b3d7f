// The client process of tools/bench.sh: does one measured piece of work, either directly with
// librdkafka or through a sidecar over gRPC, and prints one line of figures:
//
//   records=<n> seconds=<first to last record> cpu_us=<this process's CPU> [p50_us= p99_us=]
//
// Modes (--mode):
//   produce-direct     an idempotent acks=all librdkafka producer, every delivery report awaited;
//                      with --window, at most that many records waiting for Kafka
//   produce-stream     ProduceStream, one request per record
//   produce-batch      ProduceBatchStream, --batch records per message
//   consume-direct     a librdkafka group consumer in a fresh group, reading --records
//   consume-sidecar    --streams Consume streams of one fresh group, each acking every batch
//   latency-direct     records produced at --rate carry their send time; a direct consumer
//   latency-sidecar    ... or a sidecar stream receives them: p50/p99 of send -> receive
//   subscribe          --streams Consume streams of one group, until all are Subscribed

#include <gflags/gflags.h>
#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafka.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/kafka_sidecar.grpc.pb.h"

DEFINE_string(mode, "", "what to measure (see the file's comment)");
DEFINE_string(brokers, "", "Kafka bootstrap servers");
DEFINE_string(target, "", "the sidecar's gRPC address");
DEFINE_string(topic, "bench", "topic");
DEFINE_string(group, "", "consumer group (consume and latency modes)");
DEFINE_int64(records, 200000, "records to produce or consume");
DEFINE_int32(value_size, 100, "bytes per record value");
DEFINE_int32(batch, 500, "records per ProduceBatch");
DEFINE_int64(window, 0,
             "produce-direct: at most this many records waiting for Kafka, asking librdkafka to "
             "send at once at half of it (what a sidecar stream does); 0: no limit");
DEFINE_int32(streams, 1, "Consume streams");
DEFINE_int32(max_in_flight, 1000, "Subscribe.max_in_flight");
DEFINE_int32(min_backoff_ms, 0,
             "consume-sidecar: subscribe with a retry policy of this backoff (0: none)");
DEFINE_string(nack_key, "",
              "consume-sidecar: nack every record of this key instead of acking it, and count "
              "only the other keys' records (--records of them, less this key's share of 1000)");
DEFINE_int32(rate, 1000, "records a second (latency modes)");
DEFINE_int32(seconds, 5, "how long to produce (latency modes)");

namespace {

using kafka_sidecar::v1::ConsumeRequest;
using kafka_sidecar::v1::ConsumeResponse;
using kafka_sidecar::v1::KafkaSidecar;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "bench_client: %s\n", message.c_str());
  std::exit(1);
}

double CpuMicros() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec * 1e6 + usage.ru_utime.tv_usec + usage.ru_stime.tv_sec * 1e6 +
         usage.ru_stime.tv_usec;
}

void Report(int64_t records, absl::Duration elapsed, double cpu_us, const std::string& extra = "") {
  std::printf("records=%lld seconds=%.6f cpu_us=%.0f%s\n", static_cast<long long>(records),
              absl::ToDoubleSeconds(elapsed), cpu_us, extra.c_str());
  std::fflush(stdout);
}

rd_kafka_t* NewClient(rd_kafka_type_t type,
                      const std::vector<std::pair<std::string, std::string>>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [name, value] : settings) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      Die(error);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, error, sizeof(error));
  if (rk == nullptr) Die(error);
  return rk;
}

std::string Value(int64_t stamp_ns) {
  std::string value(static_cast<size_t>(std::max(FLAGS_value_size, 8)), 'x');
  std::memcpy(value.data(), &stamp_ns, sizeof(stamp_ns));
  return value;
}

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

std::unique_ptr<KafkaSidecar::Stub> Stub() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return KafkaSidecar::NewStub(
      grpc::CreateCustomChannel(FLAGS_target, grpc::InsecureChannelCredentials(), args));
}

// --- produce ---------------------------------------------------------------------------------

std::atomic<int64_t> delivered{0};
std::atomic<int64_t> failed{0};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  (message->err == RD_KAFKA_RESP_ERR_NO_ERROR ? delivered : failed)++;
}

void ProduceDirect() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"bootstrap.servers", FLAGS_brokers}, {"enable.idempotence", "true"}, {"acks", "all"}}) {
    rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof(error));
  }
  rd_kafka_conf_set_dr_msg_cb(conf, &OnDelivery);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (rk == nullptr) Die(error);
  rd_kafka_topic_t* topic = rd_kafka_topic_new(rk, FLAGS_topic.c_str(), nullptr);
  const std::string value = Value(0);
  const double cpu = CpuMicros();
  const absl::Time start = absl::Now();
  int64_t unasked = 0;  // produced since the last flush
  for (int64_t i = 0; i < FLAGS_records; ++i) {
    if (FLAGS_window > 0) {
      if (2 * (i - delivered - failed) >= FLAGS_window && 2 * unasked >= FLAGS_window) {
        rd_kafka_flush(rk, 0);
        unasked = 0;
      }
      while (i - delivered - failed >= FLAGS_window) rd_kafka_poll(rk, 1);
      ++unasked;
    }
    const std::string key = absl::StrCat("key-", i % 1000);
    while (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                            const_cast<char*>(value.data()), value.size(), key.data(), key.size(),
                            nullptr) != 0) {
      rd_kafka_poll(rk, 10);  // the local queue is full: serve reports until there is room
    }
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 60000);
  const absl::Duration elapsed = absl::Now() - start;
  const double used = CpuMicros() - cpu;
  if (delivered != FLAGS_records) Die(absl::StrCat(failed.load(), " records failed"));
  Report(FLAGS_records, elapsed, used);
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(rk);
}

kafka_sidecar::v1::ProduceRequest Request(int64_t i, const std::string& value) {
  kafka_sidecar::v1::ProduceRequest request;
  request.set_topic(FLAGS_topic);
  request.set_key(absl::StrCat("key-", i % 1000));
  request.set_value(value);
  request.set_request_id(static_cast<uint64_t>(i));
  return request;
}

void ProduceStream() {
  auto stub = Stub();
  grpc::ClientContext context;
  auto stream = stub->ProduceStream(&context);
  const std::string value = Value(0);
  const double cpu = CpuMicros();
  const absl::Time start = absl::Now();
  std::thread writer([&] {
    for (int64_t i = 0; i < FLAGS_records; ++i) {
      if (!stream->Write(Request(i, value))) return;
    }
    stream->WritesDone();
  });
  int64_t answered = 0;
  int64_t errors = 0;
  kafka_sidecar::v1::ProduceResponse response;
  while (answered < FLAGS_records && stream->Read(&response)) {
    ++answered;
    if (response.has_error()) ++errors;
  }
  const absl::Duration elapsed = absl::Now() - start;
  writer.join();
  const grpc::Status status = stream->Finish();
  if (answered != FLAGS_records || errors > 0) {
    Die(absl::StrCat("ProduceStream: ", answered, " answered, ", errors, " errors, ",
                     status.error_message()));
  }
  Report(FLAGS_records, elapsed, CpuMicros() - cpu);
}

void ProduceBatch() {
  auto stub = Stub();
  grpc::ClientContext context;
  auto stream = stub->ProduceBatchStream(&context);
  const std::string value = Value(0);
  const double cpu = CpuMicros();
  const absl::Time start = absl::Now();
  std::thread writer([&] {
    kafka_sidecar::v1::ProduceBatch batch;
    for (int64_t i = 0; i < FLAGS_records;) {
      batch.Clear();
      batch.set_batch_id(static_cast<uint64_t>(i));
      for (int n = 0; n < FLAGS_batch && i < FLAGS_records; ++n, ++i) {
        *batch.add_records() = Request(i, value);
      }
      if (!stream->Write(batch)) return;
    }
    stream->WritesDone();
  });
  int64_t answered = 0;
  int64_t errors = 0;
  kafka_sidecar::v1::ProduceBatchResult result;
  while (answered < FLAGS_records && stream->Read(&result)) {
    for (const auto& response : result.results()) {
      ++answered;
      if (response.has_error()) ++errors;
    }
  }
  const absl::Duration elapsed = absl::Now() - start;
  writer.join();
  const grpc::Status status = stream->Finish();
  if (answered != FLAGS_records || errors > 0) {
    Die(absl::StrCat("ProduceBatchStream: ", answered, " answered, ", errors, " errors, ",
                     status.error_message()));
  }
  Report(FLAGS_records, elapsed, CpuMicros() - cpu);
}

// --- consume ---------------------------------------------------------------------------------

rd_kafka_t* NewGroupConsumer(const std::string& group) {
  rd_kafka_t* rk = NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", FLAGS_brokers},
                                                 {"group.id", group},
                                                 {"auto.offset.reset", "earliest"},
                                                 {"enable.auto.commit", "true"},
                                                 {"fetch.wait.max.ms", "10"},
                                                 {"session.timeout.ms", "6000"},
                                                 {"heartbeat.interval.ms", "500"}});
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, FLAGS_topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_subscribe(rk, topics) != RD_KAFKA_RESP_ERR_NO_ERROR) Die("subscribe failed");
  rd_kafka_topic_partition_list_destroy(topics);
  return rk;
}

void ConsumeDirect() {
  rd_kafka_t* rk = NewGroupConsumer(FLAGS_group);
  const double cpu = CpuMicros();
  int64_t received = 0;
  absl::Time first;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (received < FLAGS_records && absl::Now() < deadline) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk, 100);
    if (message == nullptr) continue;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR && received++ == 0) first = absl::Now();
    rd_kafka_message_destroy(message);
  }
  const absl::Duration elapsed = absl::Now() - first;
  const double used = CpuMicros() - cpu;
  if (received < FLAGS_records) Die("direct consumer: not all records arrived");
  Report(received, elapsed, used);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

// One app stream: subscribes, then hands each batch to `on_batch` and acks it.
class AppStream {
 public:
  explicit AppStream(KafkaSidecar::Stub& stub) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    stream_ = stub.Consume(&context_);
  }
  void SendSubscribe() {
    ConsumeRequest request;
    request.mutable_subscribe()->set_group(FLAGS_group);
    request.mutable_subscribe()->add_topics(FLAGS_topic);
    request.mutable_subscribe()->set_max_in_flight(static_cast<uint32_t>(FLAGS_max_in_flight));
    if (FLAGS_min_backoff_ms > 0) {
      request.mutable_subscribe()->mutable_retry_policy()->set_min_backoff_ms(
          static_cast<uint32_t>(FLAGS_min_backoff_ms));
    }
    if (!stream_->Write(request)) Die("subscribe: the stream broke");
  }
  void AwaitSubscribed() {
    ConsumeResponse response;
    if (!stream_->Read(&response) || !response.has_subscribed()) Die("no Subscribed");
  }
  // Reads batches and acks each (nacking the records of --nack_key), until `on_batch` (given
  // the batch and how many records of it were acked) says stop or the stream ends.
  template <typename OnBatch>
  void Run(OnBatch on_batch) {
    ConsumeResponse response;
    ConsumeRequest ack;
    ConsumeRequest nack;
    while (stream_->Read(&response)) {
      if (!response.has_records()) continue;
      ack.mutable_ack()->clear_delivery_ids();
      nack.mutable_nack()->clear_delivery_ids();
      for (const auto& record : response.records().records()) {
        const bool poison = !FLAGS_nack_key.empty() && record.key() == FLAGS_nack_key;
        (poison ? nack.mutable_nack()->mutable_delivery_ids()
                : ack.mutable_ack()->mutable_delivery_ids())
            ->Add(record.delivery_id());
      }
      const int acked = ack.ack().delivery_ids_size();
      const bool more = on_batch(response.records(), acked);
      if (acked > 0 && !stream_->Write(ack)) return;
      if (nack.nack().delivery_ids_size() > 0 && !stream_->Write(nack)) return;
      if (!more) return;
    }
  }
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<ConsumeRequest, ConsumeResponse>> stream_;
};

void ConsumeSidecar() {
  auto stub = Stub();
  std::vector<std::unique_ptr<AppStream>> apps;
  for (int i = 0; i < FLAGS_streams; ++i) {
    apps.push_back(std::make_unique<AppStream>(*stub));
    apps.back()->SendSubscribe();
    apps.back()->AwaitSubscribed();
  }
  const double cpu = CpuMicros();
  // Records are keyed key-0 .. key-999 in turn: with --nack_key, one key's share never counts.
  const int64_t expected = FLAGS_nack_key.empty() ? FLAGS_records
                                                  : FLAGS_records - (FLAGS_records + 999) / 1000;
  absl::Mutex mu;
  int64_t received = 0;
  absl::Time first = absl::InfiniteFuture();
  absl::Time last;
  std::vector<std::thread> threads;
  for (auto& app : apps) {
    threads.emplace_back([&, app = app.get()] {
      app->Run([&](const kafka_sidecar::v1::RecordBatch&, int acked) {
        absl::MutexLock lock(&mu);
        first = std::min(first, absl::Now());
        received += acked;
        if (received < expected) return true;
        last = absl::Now();
        for (auto& other : apps) other->Cancel();
        return false;
      });
    });
  }
  for (std::thread& thread : threads) thread.join();
  if (received < expected) {
    Die(absl::StrCat("the streams ended early: ", received, " of ", expected, " records"));
  }
  Report(received, last - first, CpuMicros() - cpu);
}

// --- latency ---------------------------------------------------------------------------------

void Latency(bool direct) {
  std::vector<int64_t> latencies_ns;
  std::mutex mu;
  const int64_t total = static_cast<int64_t>(FLAGS_rate) * FLAGS_seconds;
  // Records sent before the measured run (warm-up, while the group formed) do not count.
  std::atomic<int64_t> measured_from_ns{std::numeric_limits<int64_t>::max()};
  auto on_value = [&](const void* payload, size_t size) {
    if (size < sizeof(int64_t)) return;
    int64_t sent;
    std::memcpy(&sent, payload, sizeof(sent));
    if (sent < measured_from_ns) return;
    std::lock_guard<std::mutex> lock(mu);
    latencies_ns.push_back(NowNs() - sent);
  };
  std::unique_ptr<KafkaSidecar::Stub> stub;
  std::unique_ptr<AppStream> app;
  rd_kafka_t* consumer = nullptr;
  if (direct) {
    consumer = NewGroupConsumer(FLAGS_group);
  } else {
    stub = Stub();
    app = std::make_unique<AppStream>(*stub);
    app->SendSubscribe();
    app->AwaitSubscribed();
  }
  // Warm-up: wait until the consumer owns the partitions (a probe record comes through).
  rd_kafka_t* producer = NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", FLAGS_brokers},
                                                       {"enable.idempotence", "true"},
                                                       {"acks", "all"},
                                                       {"linger.ms", "0"}});
  rd_kafka_topic_t* topic = rd_kafka_topic_new(producer, FLAGS_topic.c_str(), nullptr);
  std::atomic<bool> stop{false};
  std::thread receiver([&] {
    if (direct) {
      while (!stop) {
        rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer, 50);
        if (message == nullptr) continue;
        if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) on_value(message->payload, message->len);
        rd_kafka_message_destroy(message);
      }
    } else {
      app->Run([&](const kafka_sidecar::v1::RecordBatch& batch, int) {
        for (const auto& record : batch.records()) on_value(record.value().data(), record.value().size());
        return !stop;
      });
    }
  });
  auto produce_one = [&] {
    const std::string value = Value(NowNs());
    rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                     const_cast<char*>(value.data()), value.size(), nullptr, 0, nullptr);
    rd_kafka_poll(producer, 0);
  };
  // Warm-up until records flow (the group is formed), then the measured run.
  measured_from_ns = 0;
  const absl::Time warm_deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < warm_deadline) {
    produce_one();
    absl::SleepFor(absl::Milliseconds(20));  // NOLINT(sleep-ok): pacing, not waiting
    std::lock_guard<std::mutex> lock(mu);
    if (latencies_ns.size() >= 20) break;
  }
  const absl::Time start = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (latencies_ns.size() < 20) Die("latency: records did not come through");
    measured_from_ns = absl::ToUnixNanos(start);
    latencies_ns.clear();
  }
  const double cpu = CpuMicros();
  for (int64_t i = 0; i < total; ++i) {
    produce_one();
    const absl::Time next = start + absl::Seconds(1) * (static_cast<double>(i + 1) / FLAGS_rate);
    absl::SleepFor(next - absl::Now());  // NOLINT(sleep-ok): pacing at --rate
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (static_cast<int64_t>(latencies_ns.size()) >= total) break;
    }
    absl::SleepFor(absl::Milliseconds(10));  // NOLINT(sleep-ok): polling the count
  }
  stop = true;
  if (app != nullptr) app->Cancel();
  receiver.join();
  std::vector<int64_t> sorted;
  {
    std::lock_guard<std::mutex> lock(mu);
    sorted = latencies_ns;
  }
  if (sorted.empty()) Die("latency: nothing arrived");
  std::sort(sorted.begin(), sorted.end());
  auto at = [&sorted](double q) {
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()))] / 1000.0;
  };
  Report(static_cast<int64_t>(sorted.size()), absl::Now() - start, CpuMicros() - cpu,
         absl::StrFormat(" p50_us=%.0f p99_us=%.0f", at(0.5), at(0.99)));
  rd_kafka_flush(producer, 5000);
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(producer);
  if (consumer != nullptr) {
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
  }
}

// --- subscribe -------------------------------------------------------------------------------

void SubscribeMany() {
  auto stub = Stub();
  std::vector<std::unique_ptr<AppStream>> apps;
  const double cpu = CpuMicros();
  const absl::Time start = absl::Now();
  for (int i = 0; i < FLAGS_streams; ++i) {
    apps.push_back(std::make_unique<AppStream>(*stub));
    apps.back()->SendSubscribe();
  }
  for (auto& app : apps) app->AwaitSubscribed();
  const absl::Duration elapsed = absl::Now() - start;
  Report(FLAGS_streams, elapsed, CpuMicros() - cpu);
  for (auto& app : apps) app->Cancel();
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("one measurement of tools/bench.sh; see testing/bench_client.cc");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_mode == "produce-direct") {
    ProduceDirect();
  } else if (FLAGS_mode == "produce-stream") {
    ProduceStream();
  } else if (FLAGS_mode == "produce-batch") {
    ProduceBatch();
  } else if (FLAGS_mode == "consume-direct") {
    ConsumeDirect();
  } else if (FLAGS_mode == "consume-sidecar") {
    ConsumeSidecar();
  } else if (FLAGS_mode == "latency-direct" || FLAGS_mode == "latency-sidecar") {
    Latency(FLAGS_mode == "latency-direct");
  } else if (FLAGS_mode == "subscribe") {
    SubscribeMany();
  } else {
    Die(absl::StrCat("unknown --mode '", FLAGS_mode, "'"));
  }
  return 0;
}
