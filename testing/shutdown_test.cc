// SIGTERM to the real sidecar process while streams are busy: every record a produce stream
// accepted is answered before it exits and Kafka holds exactly what was answered; consume
// streams get the grace to ack what they hold and every acked record is committed; the exit
// is 0 and within the grace.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "broker/embedded_cluster.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "testing/consuming_app.h"
#include "testing/kafka_test_client.h"
#include "testing/sidecar_process.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;

constexpr int kPartitions = 6;
constexpr int kGraceMs = 5000;
// The operator guide's promise ("Termination"): after the grace, leaving the groups takes up to
// 5 s and the last answers up to 2 s, so terminationGracePeriodSeconds of the grace plus 10 s
// covers the exit.
const absl::Duration kExitBound = absl::Milliseconds(kGraceMs + 10000);

TEST(ShutdownTest, SigtermDuringBusyStreamAnswersEveryAcceptedRecord) {
  absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
      broker::EmbeddedCluster::Create(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic("busy", kPartitions).ok());

  absl::StatusOr<std::unique_ptr<SidecarProcess>> process = SidecarProcess::Start(
      (*cluster)->bootstrap_servers(), {absl::StrCat("--shutdown_grace_ms=", kGraceMs)},
      "shutdown");
  ASSERT_TRUE(process.ok()) << process.status();
  Subprocess* sidecar = &(*process)->process();
  auto stub = (*process)->NewStub();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub->ProduceStream(&context);
  std::atomic<bool> stop_writing{false};
  std::thread writer([&] {
    // Writes until the sidecar stops taking records (or a generous bound).
    for (uint64_t id = 1; id <= 2'000'000 && !stop_writing; ++id) {
      ProduceRequest request;
      request.set_topic("busy");
      request.set_request_id(id);
      request.set_key(absl::StrCat("k", id % 100));
      request.set_value(std::string(100, 'v'));
      if (!stream->Write(request)) return;
    }
    stream->WritesDone();
  });

  constexpr size_t kAnswersBeforeSignal = 5000;
  absl::flat_hash_set<uint64_t> answered;
  size_t failed = 0;
  absl::Time signalled;
  ProduceResponse response;
  while (stream->Read(&response)) {
    EXPECT_TRUE(answered.insert(response.request_id()).second)
        << "two answers for " << response.request_id();
    if (response.has_error()) {
      // Only a record read after the drain began may fail: it was refused, not produced.
      ++failed;
      EXPECT_EQ(response.error().code(), grpc::StatusCode::UNAVAILABLE);
      EXPECT_THAT(response.error().message(), ::testing::HasSubstr("not produced"));
    }
    if (answered.size() == kAnswersBeforeSignal) {
      sidecar->Signal(SIGTERM);
      signalled = absl::Now();
    }
  }
  stop_writing = true;
  writer.join();
  grpc::Status status = stream->Finish();
  ASSERT_GE(answered.size(), kAnswersBeforeSignal);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("shutting down"));

  absl::StatusOr<int> code = sidecar->Wait(kExitBound);
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << sidecar->Log();
  EXPECT_EQ(*code, 0) << sidecar->Log();
  EXPECT_LT(absl::Now() - signalled, kExitBound);

  // Kafka was up throughout: everything produced was acknowledged, and Kafka holds exactly the
  // records answered with success, no more (nothing written without an answer). How many
  // were refused depends on how many the app had sent when the drain began: API.md promises
  // only that each is answered once, as UNAVAILABLE and not produced (checked above).
  absl::StatusOr<int64_t> in_kafka =
      CountRecords((*cluster)->bootstrap_servers(), "busy", kPartitions);
  ASSERT_TRUE(in_kafka.ok()) << in_kafka.status();
  EXPECT_EQ(*in_kafka, static_cast<int64_t>(answered.size() - failed));
}

TEST(ShutdownTest, SigtermWithBusyConsumeStreamsCommitsEveryAckedRecord) {
  constexpr int kRecords = 6000;
  absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
      broker::EmbeddedCluster::Create(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const std::string bootstrap = (*cluster)->bootstrap_servers();
  ASSERT_TRUE((*cluster)->CreateTopic("drain", kPartitions).ok());
  ASSERT_TRUE(ProduceDirect(bootstrap, "drain", kRecords, 20).ok());
  // No periodic commits: what is committed at the end is the shutdown's doing.
  absl::StatusOr<std::unique_ptr<SidecarProcess>> process = SidecarProcess::Start(
      bootstrap,
      {absl::StrCat("--shutdown_grace_ms=", kGraceMs), "--commit_interval_ms=600000",
       "--kafka_config=session.timeout.ms=6000,heartbeat.interval.ms=500,fetch.wait.max.ms=10"},
      "drain");
  ASSERT_TRUE(process.ok()) << process.status();
  Subprocess* sidecar = &(*process)->process();
  auto stub = (*process)->NewStub();
  DeliveryLog log;
  ConsumingApp first("first", *stub, "drainers", {"drain"}, 200, log);
  ConsumingApp second("second", *stub, "drainers", {"drain"}, 200, log);
  ASSERT_TRUE(first.subscribed());
  ASSERT_TRUE(second.subscribed());

  // Busy: records flow and are acked; then the apps hold what they have, SIGTERM comes, and
  // they ack it during the grace.
  ASSERT_TRUE(log.WaitUntil([](auto& d) { return d.size() >= kRecords / 3; }, absl::Seconds(60)));
  first.Hold();
  second.Hold();
  ASSERT_TRUE(log.WaitUntil(
      [](const std::vector<Delivery>& deliveries) {
        std::set<std::string> holding;
        for (const Delivery& d : deliveries) {
          if (d.acked == absl::InfiniteFuture()) holding.insert(d.app);
        }
        return holding.size() == 2;
      },
      absl::Seconds(30)));
  sidecar->Signal(SIGTERM);
  const absl::Time signalled = absl::Now();
  ASSERT_TRUE(sidecar->WaitForLog("received Terminated", absl::Seconds(10)));
  first.Release();
  second.Release();
  for (ConsumingApp* app : {&first, &second}) {
    grpc::Status status = app->AwaitEnd();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }
  absl::StatusOr<int> code = sidecar->Wait(kExitBound);
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << sidecar->Log();
  EXPECT_EQ(*code, 0) << sidecar->Log();
  const absl::Duration took = absl::Now() - signalled;
  EXPECT_LT(took, kExitBound);
  std::cout << "exited " << took << " after SIGTERM (grace " << kGraceMs << " ms)\n";

  // The group's committed offsets cover every acked record they can: each partition's stands
  // at its first record the apps never acked (with two streams and per-key order, a record
  // queued behind a held key may never have gone out before the drain).
  const std::vector<Delivery> deliveries = log.Snapshot();
  absl::StatusOr<std::vector<int64_t>> committed =
      CommittedOffsets(bootstrap, "drainers", "drain", kPartitions);
  ASSERT_TRUE(committed.ok()) << committed.status();
  std::vector<std::set<int64_t>> acked(kPartitions);
  for (const Delivery& d : deliveries) {
    if (d.acked != absl::InfiniteFuture()) acked[d.partition].insert(d.offset);
  }
  size_t acked_total = 0;
  for (int p = 0; p < kPartitions; ++p) {
    int64_t first_unacked = 0;
    while (acked[p].count(first_unacked) > 0) ++first_unacked;
    EXPECT_EQ((*committed)[p], first_unacked) << "partition " << p;
    acked_total += acked[p].size();
  }
  EXPECT_EQ(acked_total, DistinctRecords(deliveries))
      << "the apps could not ack everything they held";
}

}  // namespace
}  // namespace kafka_sidecar::testing
