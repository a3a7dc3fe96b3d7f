// Consume throughput, in one run against one embedded cluster: a direct librdkafka consumer,
// then the sidecar (in this process, over loopback TCP) reading the same records on 1, 2, 4
// and 8 Consume streams of one subscription, each app acking every batch. 100-byte values.
// Prints a table and each row's ratio to the direct consumer.
//
//   bazel run -c opt //testing:consume_benchmark -- --records=200000

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "broker/embedded_cluster.h"
#include "broker/kafka_config.h"
#include "broker/rdkafka_producer.h"
#include "sidecar/config.h"
#include "sidecar/consumer_factory.h"
#include "sidecar/server.h"
#include "testing/consume_client.h"
#include "testing/benchmark_table.h"
#include "testing/kafka_test_client.h"

DEFINE_int64(records, 400000, "records to consume in each measurement");
DEFINE_int32(value_size, 100, "bytes per record value");
DEFINE_int32(partitions, 24,
             "partitions of the benchmark topic (the mock keeps about 5 MiB per partition)");
DEFINE_int32(max_in_flight, 1000, "the stream's max_in_flight");
DEFINE_string(consumer_config, "", "extra librdkafka settings for the sidecar's consumer");
DEFINE_string(streams, "1,2,4,8", "numbers of concurrent Consume streams to measure");
DEFINE_int32(max_buffered_records, 100000, "the sidecar's --max_buffered_records");

namespace kafka_sidecar::testing {
namespace {

// Reads FLAGS_records of `topic` through the sidecar on `streams` concurrent Consume streams of
// one new group, each app acking every batch. Returns the time from the first batch to the
// last record.
absl::StatusOr<absl::Duration> ConsumeThroughSidecar(kafka_sidecar::v1::KafkaSidecar::Stub& stub,
                                                     const std::string& topic, int streams) {
  const std::string group = absl::StrCat("bench-", streams);
  std::vector<std::unique_ptr<ConsumeClient>> clients;
  for (int i = 0; i < streams; ++i) {
    clients.push_back(std::make_unique<ConsumeClient>(stub, absl::Seconds(300)));
    if (!clients.back()->Subscribe(group, {topic}, FLAGS_max_in_flight)) {
      return absl::InternalError("subscribe failed");
    }
  }
  absl::Mutex mu;
  int64_t received = 0;
  absl::Time first = absl::InfiniteFuture();
  absl::Time last;
  std::vector<std::thread> apps;
  for (int i = 0; i < streams; ++i) {
    apps.emplace_back([&, i] {
      std::vector<uint64_t> ids;
      while (true) {
        std::optional<kafka_sidecar::v1::RecordBatch> batch = clients[i]->Next();
        if (!batch.has_value()) return;
        ids.clear();
        for (const kafka_sidecar::v1::Record& record : batch->records()) {
          ids.push_back(record.delivery_id());
        }
        clients[i]->Ack(ids);
        absl::MutexLock lock(&mu);
        first = std::min(first, absl::Now());
        received += batch->records_size();
        if (received >= FLAGS_records) {
          last = absl::Now();
          for (auto& client : clients) client->Cancel();
          return;
        }
      }
    });
  }
  for (std::thread& app : apps) app.join();
  absl::MutexLock lock(&mu);
  if (received < FLAGS_records) return absl::InternalError("the streams ended early");
  return last - first;
}

int Run() {
  auto cluster = broker::EmbeddedCluster::Create(3);
  if (!cluster.ok()) {
    std::fprintf(stderr, "%s\n", cluster.status().ToString().c_str());
    return 1;
  }
  const std::string topic = "bench-consume";
  (*cluster)->CreateTopic(topic, FLAGS_partitions).IgnoreError();
  auto produced =
      ProduceDirect((*cluster)->bootstrap_servers(), topic, FLAGS_records, FLAGS_value_size);
  if (!produced.ok()) {
    std::fprintf(stderr, "producing: %s\n", produced.status().ToString().c_str());
    return 1;
  }
  std::printf("consume benchmark: %lld records of %d bytes, %d partitions, embedded cluster\n",
              static_cast<long long>(FLAGS_records), FLAGS_value_size, FLAGS_partitions);
  auto direct = ConsumeDirect((*cluster)->bootstrap_servers(), topic, FLAGS_records);
  if (!direct.ok()) {
    std::fprintf(stderr, "direct: %s\n", direct.status().ToString().c_str());
    return 1;
  }
  BenchmarkTable table(FLAGS_records);
  table.Row("direct librdkafka consumer", *direct);
  broker::RdKafkaProducerOptions producer_options;
  producer_options.bootstrap_servers = (*cluster)->bootstrap_servers();
  auto producer = broker::RdKafkaProducer::Create(producer_options);
  if (!producer.ok()) return 1;
  sidecar::SidecarConfig config;
  config.listen = "127.0.0.1:0";
  config.brokers = (*cluster)->bootstrap_servers();
  config.max_in_flight_per_stream = FLAGS_max_in_flight;
  config.max_buffered_records = FLAGS_max_buffered_records;
  broker::KafkaSettings settings = {{"fetch.wait.max.ms", "10"}, {"session.timeout.ms", "6000"}};
  auto extra = broker::LoadKafkaSettings(FLAGS_consumer_config);
  if (!extra.ok()) return 2;
  settings.insert(settings.end(), extra->begin(), extra->end());
  auto server = sidecar::SidecarServer::Start(
      config, {**producer, sidecar::RdKafkaConsumerFactory(config, config.brokers, settings)});
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  auto stub = kafka_sidecar::v1::KafkaSidecar::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
  for (absl::string_view item : absl::StrSplit(FLAGS_streams, ',', absl::SkipEmpty())) {
    int streams = 0;
    if (!absl::SimpleAtoi(item, &streams) || streams < 1) {
      std::fprintf(stderr, "bad --streams\n");
      return 2;
    }
    auto sidecar = ConsumeThroughSidecar(*stub, topic, streams);
    if (!sidecar.ok()) {
      std::fprintf(stderr, "sidecar: %s\n", sidecar.status().ToString().c_str());
      return 1;
    }
    table.Row(absl::StrCat("sidecar ", streams, " stream(s), max_in_flight=", FLAGS_max_in_flight),
              *sidecar);
  }
  return 0;
}

}  // namespace
}  // namespace kafka_sidecar::testing

int main(int argc, char** argv) {
  kafka_sidecar::testing::InitBenchmark(&argc, &argv);
  return kafka_sidecar::testing::Run();
}
