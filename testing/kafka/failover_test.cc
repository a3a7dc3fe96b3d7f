// A broker of three killed under the sidecar, on Apache Kafka itself (KRaft, each node a broker
// and a controller; topics of three replicas, two in sync required): mid-produce, every request
// is answered exactly once and nothing acknowledged is missing; mid-consume, consumption
// resumes and every record is delivered.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "testing/consuming_app.h"
#include "testing/kafka/real_kafka.h"
#include "testing/kafka_test_client.h"
#include "testing/sidecar_process.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;
using Position = std::pair<int32_t, int64_t>;

constexpr int kPartitions = 3;
constexpr int kRecords = 30000;
// Bounds on a loaded machine: a dead broker is fenced after broker.session.timeout.ms (3 s
// here) and its partitions get new leaders; these are hang guards, not expectations.
constexpr absl::Duration kAnswered = absl::Seconds(120);
constexpr absl::Duration kDelivered = absl::Seconds(120);

// One ProduceStream whose responses are counted as they come, so a test can act mid-stream.
class CountedProduceStream {
 public:
  CountedProduceStream(kafka_sidecar::v1::KafkaSidecar::Stub& stub, int records) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    stream_ = stub.ProduceStream(&context_);
    writer_ = std::thread([this, records] {
      for (int i = 0; i < records; ++i) {
        ProduceRequest request;
        request.set_topic("durable");
        request.set_key(absl::StrCat("key-", i % 100));
        request.set_value(absl::StrCat("value-", i));
        request.set_request_id(i);
        if (!stream_->Write(request)) return;
      }
      stream_->WritesDone();
    });
    reader_ = std::thread([this] {
      ProduceResponse response;
      while (stream_->Read(&response)) {
        absl::MutexLock lock(&mu_);
        responses_.push_back(response);
      }
      writer_.join();
      grpc::Status status = stream_->Finish();
      absl::MutexLock lock(&mu_);
      status_ = status;
      ended_ = true;
    });
  }
  ~CountedProduceStream() {
    context_.TryCancel();
    reader_.join();
  }

  size_t answered() {
    absl::MutexLock lock(&mu_);
    return responses_.size();
  }
  // Waits until the server ended the stream; false when `timeout` passed first.
  bool AwaitEnd(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout);
  }
  std::vector<ProduceResponse> responses() {
    absl::MutexLock lock(&mu_);
    return responses_;
  }
  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<ProduceRequest, ProduceResponse>> stream_;
  std::thread writer_;
  std::thread reader_;
  absl::Mutex mu_;
  std::vector<ProduceResponse> responses_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

TEST(RealKafkaFailoverTest, ABrokerKilledMidProduceAndMidConsumeLosesNothing) {
  RealKafka::Options options;
  options.nodes = 3;
  options.properties = {{"broker.session.timeout.ms", "3000"},
                        {"broker.heartbeat.interval.ms", "500"}};
  absl::StatusOr<std::unique_ptr<RealKafka>> started = RealKafka::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  RealKafka& kafka = **started;
  std::cout << "three Kafka " << kafka.line() << " nodes started in " << kafka.start_time() << "\n";
  ASSERT_TRUE(CreateTopic(kafka.bootstrap(), "durable", kPartitions, 3,
                          {{"min.insync.replicas", "2"}})
                  .ok());
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar = SidecarProcess::Start(
      kafka.bootstrap(),
      {"--kafka_config=fetch.wait.max.ms=10,session.timeout.ms=10000,heartbeat.interval.ms=500"},
      "failover");
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  auto stub = (*sidecar)->NewStub();

  // Mid-produce: node 2 dies once a tenth of the records are answered.
  absl::Time killed;
  size_t answered_at_kill = 0;
  std::vector<ProduceResponse> responses;
  {
    CountedProduceStream produce(*stub, kRecords);
    ASSERT_TRUE(WaitUntil([&] { return produce.answered() >= kRecords / 10; }, kAnswered));
    ASSERT_TRUE(kafka.Kill(1).ok());
    killed = absl::Now();
    answered_at_kill = produce.answered();
    ASSERT_TRUE(produce.AwaitEnd(kAnswered)) << produce.answered() << " of " << kRecords
                                             << " answered";
    EXPECT_TRUE(produce.status().ok()) << produce.status().error_message();
    responses = produce.responses();
  }
  const absl::Duration produce_after_kill = absl::Now() - killed;
  ASSERT_LT(answered_at_kill, static_cast<size_t>(kRecords)) << "the kill came after the produce";

  // Every request answered exactly once; what was acknowledged is all in Kafka, where the
  // sidecar said.
  std::map<uint64_t, int> answers;
  std::map<Position, std::string> acked;
  int refused = 0;
  for (const ProduceResponse& r : responses) {
    ++answers[r.request_id()];
    if (r.has_error()) {
      ++refused;
      EXPECT_EQ(r.error().code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE))
          << r.error().message();
    } else {
      EXPECT_TRUE(acked.emplace(Position{r.partition(), r.offset()},
                                absl::StrCat("value-", r.request_id()))
                      .second)
          << "two records acknowledged at " << r.partition() << "/" << r.offset();
    }
  }
  EXPECT_EQ(answers.size(), static_cast<size_t>(kRecords));
  for (const auto& [id, count] : answers) EXPECT_EQ(count, 1) << "request " << id;
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(kafka.bootstrap(), "durable", kPartitions);
  ASSERT_TRUE(ends.ok()) << ends.status();
  int64_t in_kafka = 0;
  for (int64_t end : *ends) in_kafka += end;
  absl::StatusOr<std::vector<ConsumedRecord>> read =
      ReadTopic(kafka.bootstrap(), "durable", in_kafka, absl::Seconds(60));
  ASSERT_TRUE(read.ok()) << read.status();
  std::map<Position, std::string> stored;
  for (const ConsumedRecord& r : *read) stored[{r.partition, r.offset}] = r.value;
  for (const auto& [position, value] : acked) {
    auto it = stored.find(position);
    ASSERT_NE(it, stored.end()) << "acknowledged " << value << " is missing";
    EXPECT_EQ(it->second, value);
  }
  std::cout << "produce: " << answered_at_kill << " of " << kRecords
            << " answered when node 2 was killed; the rest answered "
            << produce_after_kill << " later (" << refused << " refused, " << acked.size()
            << " acknowledged, all of them in Kafka)\n";

  // Node 2 comes back; mid-consume, node 3 dies.
  ASSERT_TRUE(kafka.Restart(1).ok());
  DeliveryLog log;
  ConsumingApp app("app", *stub, "survivors", {"durable"}, 500, log);
  ASSERT_TRUE(app.subscribed());
  ASSERT_TRUE(log.WaitUntil(
      [&](const std::vector<Delivery>& d) { return DistinctRecords(d) >= stored.size() / 4; },
      kDelivered));
  // The app stops acking, so consumption stops within its in-flight limit while the node dies
  // (a fast machine would otherwise finish before the kill); then it goes on.
  app.Hold();
  ASSERT_TRUE(kafka.Kill(2).ok());
  const absl::Time killed_again = absl::Now();
  const size_t delivered_at_kill = DistinctRecords(log.Snapshot());
  app.Release();
  ASSERT_TRUE(log.WaitUntil(
      [&](const std::vector<Delivery>& d) { return DistinctRecords(d) >= stored.size(); },
      kDelivered))
      << DistinctRecords(log.Snapshot()) << " of " << stored.size() << " delivered";
  std::set<Position> delivered;
  for (const Delivery& d : log.Snapshot()) delivered.insert({d.partition, d.offset});
  for (const auto& [position, value] : stored) {
    EXPECT_EQ(delivered.count(position), 1u) << position.first << "/" << position.second;
  }
  ASSERT_LT(delivered_at_kill, stored.size()) << "the kill came after the consume";
  std::cout << "consume: " << delivered_at_kill << " of " << stored.size()
            << " delivered when node 3 was killed; the rest " << absl::Now() - killed_again
            << " later\n";
}

}  // namespace
}  // namespace kafka_sidecar::testing
