// Consume throughput, in one run against one embedded cluster: a direct librdkafka consumer,
// then one sidecar Consume stream (in this process, over loopback TCP) reading the same
// records and acking each batch. 100-byte values. Prints a table and the sidecar/direct ratio.
//
//   bazel run -c opt //testing:consume_benchmark -- --records=200000

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "broker/embedded_cluster.h"
#include "broker/kafka_config.h"
#include "broker/rdkafka_consumer.h"
#include "broker/rdkafka_producer.h"
#include "sidecar/config.h"
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
DEFINE_int32(commit_interval_ms, 1000, "the sidecar's --commit_interval_ms");
DEFINE_int32(max_buffered_records, 100000, "the sidecar's --max_buffered_records");

namespace kafka_sidecar::testing {
namespace {

absl::StatusOr<absl::Duration> ConsumeThroughSidecar(broker::EmbeddedCluster& cluster,
                                                     const std::string& topic) {
  broker::RdKafkaProducerOptions producer_options;
  producer_options.bootstrap_servers = cluster.bootstrap_servers();
  auto producer = broker::RdKafkaProducer::Create(producer_options);
  if (!producer.ok()) return producer.status();
  sidecar::SidecarConfig config;
  config.listen = "127.0.0.1:0";
  config.brokers = cluster.bootstrap_servers();
  config.max_in_flight_per_stream = FLAGS_max_in_flight;
  config.max_buffered_records = FLAGS_max_buffered_records;
  config.commit_interval = absl::Milliseconds(FLAGS_commit_interval_ms);
  broker::KafkaSettings settings = {{"fetch.wait.max.ms", "10"}, {"session.timeout.ms", "6000"}};
  auto extra = broker::ParseKafkaSettings(FLAGS_consumer_config);
  if (!extra.ok()) return extra.status();
  settings.insert(settings.end(), extra->begin(), extra->end());
  auto server = sidecar::SidecarServer::Start(
      config, {**producer,
               [&cluster, settings](const std::string& group)
                   -> absl::StatusOr<std::unique_ptr<broker::GroupConsumer>> {
                 return broker::RdKafkaConsumer::Create(
                     {cluster.bootstrap_servers(), group, FLAGS_max_buffered_records / 2,
                      settings});
               }});
  if (!server.ok()) return server.status();
  auto stub = kafka_sidecar::v1::KafkaSidecar::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
  ConsumeClient client(*stub, absl::Seconds(300));
  if (!client.Subscribe("bench", {topic}, FLAGS_max_in_flight)) {
    return absl::InternalError("subscribe failed");
  }
  int64_t received = 0;
  absl::Time first;
  while (received < FLAGS_records) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    if (!batch.has_value()) return absl::InternalError(client.AwaitEnd().error_message());
    if (received == 0) first = absl::Now();
    std::vector<uint64_t> ids;
    ids.reserve(batch->records_size());
    for (const kafka_sidecar::v1::Record& record : batch->records()) {
      ids.push_back(record.delivery_id());
    }
    received += batch->records_size();
    client.Ack(ids);
  }
  const absl::Duration elapsed = absl::Now() - first;
  client.Cancel();
  return elapsed;
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
  auto sidecar = ConsumeThroughSidecar(**cluster, topic);
  if (!sidecar.ok()) {
    std::fprintf(stderr, "sidecar: %s\n", sidecar.status().ToString().c_str());
    return 1;
  }
  table.Row(absl::StrCat("sidecar 1 stream, max_in_flight=", FLAGS_max_in_flight), *sidecar);
  return 0;
}

}  // namespace
}  // namespace kafka_sidecar::testing

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  if (FLAGS_v == 0) FLAGS_minloglevel = 1;
  google::InitGoogleLogging(argv[0]);
  // As the sidecar's main does: Debian's abseil checks every lock for deadlock cycles.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return kafka_sidecar::testing::Run();
}
