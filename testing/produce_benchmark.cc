// Produce throughput, in one run against one embedded cluster: a direct librdkafka producer,
// then ProduceStream through the sidecar (one stream, in this process, over loopback TCP),
// 100-byte values. Prints a table and the sidecar/direct ratio.
//
//   bazel run -c opt //testing:produce_benchmark -- --records=200000

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/embedded_cluster.h"
#include "broker/rdkafka_producer.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/config.h"
#include "sidecar/server.h"
#include "testing/benchmark_table.h"
#include "testing/kafka_test_client.h"

DEFINE_int64(records, 200000, "records per measurement");
DEFINE_int32(value_size, 100, "bytes per record value");
DEFINE_int32(partitions, 6, "partitions of each benchmark topic");
DEFINE_string(max_pending, "1000,10000",
              "the --max_pending_produces values to measure the sidecar with");
DEFINE_string(streams, "1,4", "numbers of concurrent ProduceStreams to measure");

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;

// Sends FLAGS_records through a sidecar on `cluster` over `streams` concurrent ProduceStreams;
// returns the time to the last answer.
absl::StatusOr<absl::Duration> ProduceThroughSidecar(broker::EmbeddedCluster& cluster,
                                                     const std::string& topic, int max_pending,
                                                     int streams) {
  broker::RdKafkaProducerOptions options;
  options.bootstrap_servers = cluster.bootstrap_servers();
  auto producer = broker::RdKafkaProducer::Create(options);
  if (!producer.ok()) return producer.status();
  sidecar::SidecarConfig config;
  config.listen = "127.0.0.1:0";
  config.brokers = cluster.bootstrap_servers();
  config.max_pending_produces = max_pending;
  auto server = sidecar::SidecarServer::Start(
      config, {**producer, [](const std::string&, int) -> absl::StatusOr<
                               std::unique_ptr<broker::GroupConsumer>> {
                 return absl::UnimplementedError("produce only");
               }});
  if (!server.ok()) return server.status();

  auto stub = kafka_sidecar::v1::KafkaSidecar::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
  const std::string value(FLAGS_value_size, 'v');
  {
    // Warm-up, untimed: librdkafka learns a new topic's metadata on its 1 s topic scan, which
    // would otherwise stall the first records (the direct producer's measurement has no such
    // wait either, see the closing note of the produce issue).
    grpc::ClientContext context;
    auto stream = stub->ProduceStream(&context);
    ProduceRequest request;
    request.set_topic(topic);
    request.set_value(value);
    stream->Write(request);
    stream->WritesDone();
    ProduceResponse response;
    while (stream->Read(&response)) {
    }
    if (grpc::Status status = stream->Finish(); !status.ok()) {
      return absl::InternalError(status.error_message());
    }
  }
  const int64_t per_stream = FLAGS_records / streams;
  std::vector<absl::Status> results(streams);
  const absl::Time start = absl::Now();
  std::vector<std::thread> clients;
  for (int s = 0; s < streams; ++s) {
    clients.emplace_back([&, s] {
      grpc::ClientContext context;
      auto stream = stub->ProduceStream(&context);
      std::thread writer([&] {
        ProduceRequest request;
        request.set_topic(topic);
        request.set_value(value);
        for (int64_t i = 0; i < per_stream; ++i) {
          request.set_request_id(i);
          request.set_key(absl::StrCat("key-", i % 1000));
          // As a throughput-minded app would: let gRPC coalesce messages; WritesDone flushes.
          if (!stream->Write(request, grpc::WriteOptions().set_buffer_hint())) return;
        }
        stream->WritesDone();
      });
      int64_t answered = 0;
      int64_t failed = 0;
      ProduceResponse response;
      while (stream->Read(&response)) {
        ++answered;
        if (response.has_error()) ++failed;
      }
      writer.join();
      grpc::Status status = stream->Finish();
      if (!status.ok()) {
        results[s] = absl::InternalError(status.error_message());
      } else if (answered != per_stream || failed != 0) {
        results[s] = absl::InternalError(
            absl::StrCat(answered, " answers, ", failed, " failed, of ", per_stream));
      }
    });
  }
  for (std::thread& client : clients) client.join();
  const absl::Duration elapsed = absl::Now() - start;
  for (const absl::Status& result : results) {
    if (!result.ok()) return result;
  }
  return elapsed;
}

int Run() {
  auto cluster = broker::EmbeddedCluster::Create(3);
  if (!cluster.ok()) {
    std::fprintf(stderr, "%s\n", cluster.status().ToString().c_str());
    return 1;
  }
  std::printf("produce benchmark: %lld records of %d bytes, %d partitions, embedded cluster\n",
              static_cast<long long>(FLAGS_records), FLAGS_value_size, FLAGS_partitions);
  (*cluster)->CreateTopic("bench-direct", FLAGS_partitions).IgnoreError();
  auto direct = ProduceDirect((*cluster)->bootstrap_servers(), "bench-direct", FLAGS_records,
                              FLAGS_value_size);
  if (!direct.ok()) {
    std::fprintf(stderr, "direct: %s\n", direct.status().ToString().c_str());
    return 1;
  }
  BenchmarkTable table(FLAGS_records);
  table.Row("direct librdkafka producer", *direct);

  for (absl::string_view streams_item : absl::StrSplit(FLAGS_streams, ',', absl::SkipEmpty())) {
    for (absl::string_view item : absl::StrSplit(FLAGS_max_pending, ',', absl::SkipEmpty())) {
      int max_pending = 0;
      int streams = 0;
      if (!absl::SimpleAtoi(item, &max_pending) || !absl::SimpleAtoi(streams_item, &streams) ||
          streams < 1) {
        std::fprintf(stderr, "bad --max_pending or --streams\n");
        return 2;
      }
      const std::string topic = absl::StrCat("bench-sidecar-", streams, "-", max_pending);
      (*cluster)->CreateTopic(topic, FLAGS_partitions).IgnoreError();
      auto sidecar = ProduceThroughSidecar(**cluster, topic, max_pending, streams);
      if (!sidecar.ok()) {
        std::fprintf(stderr, "sidecar: %s\n", sidecar.status().ToString().c_str());
        return 1;
      }
      table.Row(absl::StrCat("sidecar ", streams, " stream(s), pending<=", max_pending), *sidecar);
    }
  }
  return 0;
}

}  // namespace
}  // namespace kafka_sidecar::testing

int main(int argc, char** argv) {
  kafka_sidecar::testing::InitBenchmark(&argc, &argv);
  return kafka_sidecar::testing::Run();
}
