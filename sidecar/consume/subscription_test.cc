// A Subscription on a scripted group (testing/fake_group.h) and a simulated clock: commits and
// their backoff, flow control, the linger, Kafka's liveness, revocations with records in flight
// and Kafka's permanent errors, each in milliseconds. (librdkafka's mock cluster takes seconds
// a rebalance and cannot make some of these: an INCONSISTENT_GROUP_PROTOCOL join aborts it; the
// real broker's cases are in testing/kafka/.)

#include "sidecar/consume/subscription.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "proto/kafka_sidecar.pb.h"
#include "testing/fake_group.h"
#include "testing/fake_producer.h"
#include "testing/simulated_clock.h"
#include "testing/wait.h"

namespace kafka_sidecar::sidecar {
namespace {

using broker::Message;
using broker::TopicPartition;
using ::kafka_sidecar::testing::FakeGroup;
using ::kafka_sidecar::testing::FakeProducer;
using ::kafka_sidecar::testing::SimulatedClock;
using ::kafka_sidecar::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr absl::Duration kWait = absl::Seconds(30);  // hang guard of every wait
const TopicPartition kP0{"orders", 0};
const TopicPartition kP1{"orders", 1};

std::vector<Message> Records(const TopicPartition& tp, int64_t from, int64_t to) {
  std::vector<Message> records;
  for (int64_t offset = from; offset < to; ++offset) {
    Message m;
    m.tp = tp;
    m.offset = offset;
    m.key = absl::StrCat("key-", offset);
    m.value = "value";
    records.push_back(std::move(m));
  }
  return records;
}

// An app stream that keeps what it was sent and how it ended.
class FakeStream final : public ConsumerStream {
 public:
  struct Received {
    uint64_t delivery_id;
    int32_t partition;
    int64_t offset;
  };

  void Send(WireResponse response) override {
    kafka_sidecar::v1::ConsumeResponse parsed;
    const absl::string_view bytes = response.bytes();
    EXPECT_TRUE(parsed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    absl::MutexLock lock(&mu_);
    for (const auto& r : parsed.records().records()) {
      received_.push_back({r.delivery_id(), r.partition(), r.offset()});
    }
  }
  void End(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ended_ = status;
  }

  // Waits until `count` records arrived in all; returns what did.
  std::vector<Received> AwaitReceived(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return received_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return received_;
  }
  std::vector<Received> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  std::optional<absl::Status> ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
};

std::vector<uint64_t> DeliveryIds(const std::vector<FakeStream::Received>& received) {
  std::vector<uint64_t> ids;
  for (const auto& r : received) ids.push_back(r.delivery_id);
  return ids;
}

class SubscriptionTest : public ::testing::Test {
 protected:
  SubscriptionTest() {
    options_.group = "orders-readers";
    options_.topics = {"orders"};
    options_.commit_interval = absl::Seconds(1);
    options_.max_commit_backoff = absl::Seconds(8);
    options_.linger = absl::Seconds(5);
    options_.kafka_unavailable_timeout = absl::Seconds(10);
    options_.inactivity_timeout = absl::Hours(1);
    // The poll loop turns only when the test makes it (FakeGroup::Cycle) or Kafka has news.
    options_.poll_timeout = absl::Hours(1);
  }

  void Start() {
    subscription_ =
        std::make_unique<Subscription>(options_, group_.NewConsumer(), &dead_letters_, clock_, metrics_);
    ASSERT_TRUE(subscription_->Start().ok());
  }

  // Moves the clock on and lets the subscription take a step at the new time.
  void Advance(absl::Duration d) {
    clock_.Advance(d);
    ASSERT_TRUE(group_.Cycle());
  }

  // App streams, which outlive the subscription (it ends those still attached as it closes).
  FakeStream& NewStream() { return streams_.emplace_back(); }

  SubscriptionOptions options_;
  FakeGroup group_;
  FakeProducer dead_letters_;
  SimulatedClock clock_;
  ConsumeMetrics metrics_;
  std::deque<FakeStream> streams_;
  std::unique_ptr<Subscription> subscription_;
};

TEST_F(SubscriptionTest, CommitsAckedOffsetsEveryIntervalAndBacksOffWhileCommitsFail) {
  Start();
  FakeStream& stream = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &stream, 100));
  group_.Assign({kP0});
  group_.Fetch(Records(kP0, 0, 3));
  const std::vector<FakeStream::Received> first = stream.AwaitReceived(3);
  ASSERT_EQ(first.size(), 3u);
  subscription_->Ack(1, DeliveryIds(first));

  Advance(absl::Milliseconds(999));
  EXPECT_EQ(group_.commit_requests(), 0);
  Advance(absl::Milliseconds(1));
  ASSERT_TRUE(group_.Cycle());  // the commit's outcome arrives in a later poll
  EXPECT_THAT(group_.committed(), ElementsAre(Pair(kP0, 3)));
  EXPECT_EQ(metrics_.commits_succeeded.load(), 1);

  // Kafka refuses commits: retried after 2 s, then 4 s, 8 s, 8 s (the cap).
  group_.SetCommitOutcome(absl::UnavailableError("coordinator gone"));
  group_.Fetch(Records(kP0, 3, 4));
  const std::vector<FakeStream::Received> second = stream.AwaitReceived(4);
  ASSERT_EQ(second.size(), 4u);
  subscription_->Ack(1, {second.back().delivery_id});
  Advance(absl::Seconds(1));
  ASSERT_TRUE(group_.Cycle());
  int requests = group_.commit_requests();
  EXPECT_EQ(requests, 2);
  for (absl::Duration backoff : {absl::Seconds(2), absl::Seconds(4), absl::Seconds(8),
                                 absl::Seconds(8)}) {
    Advance(backoff - absl::Milliseconds(1));
    EXPECT_EQ(group_.commit_requests(), requests) << "retried before " << backoff;
    Advance(absl::Milliseconds(1));
    ASSERT_TRUE(group_.Cycle());
    EXPECT_EQ(group_.commit_requests(), ++requests) << "not retried after " << backoff;
  }
  EXPECT_EQ(metrics_.commits_failed.load(), 5);

  // Kafka is back: the acked state was kept, and the next retry commits it.
  group_.SetCommitOutcome(absl::OkStatus());
  Advance(absl::Seconds(8));
  ASSERT_TRUE(group_.Cycle());
  EXPECT_THAT(group_.committed(), ElementsAre(Pair(kP0, 4)));
  // And the interval is 1 s again.
  group_.Fetch(Records(kP0, 4, 5));
  subscription_->Ack(1, {stream.AwaitReceived(5).back().delivery_id});
  Advance(absl::Seconds(1));
  ASSERT_TRUE(group_.Cycle());
  EXPECT_THAT(group_.committed(), ElementsAre(Pair(kP0, 5)));
}

TEST_F(SubscriptionTest, TimeLagGrowsWhileTheAppStallsAndFallsAsItAcks) {
  Start();
  FakeStream& stream = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &stream, 100));
  group_.Assign({kP0, kP1});
  // Written 3 s apart, on two partitions (Kafka timestamps are in milliseconds).
  const int64_t now_ms = absl::ToUnixMillis(clock_.Now());
  auto age_of = [this](int64_t written_ms) {
    return clock_.Now() - absl::FromUnixMillis(written_ms);
  };
  std::vector<Message> records = Records(kP0, 0, 1);
  records[0].timestamp_ms = now_ms - 3000;
  std::vector<Message> later = Records(kP1, 0, 1);
  later[0].timestamp_ms = now_ms;
  records.push_back(later[0]);
  group_.Fetch(records);
  const std::vector<FakeStream::Received> received = stream.AwaitReceived(2);
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(subscription_->Stats().oldest_unacked_age, age_of(now_ms - 3000));

  // The app stalls: the lag grows with the clock.
  Advance(absl::Seconds(5));
  EXPECT_EQ(subscription_->Stats().oldest_unacked_age, age_of(now_ms - 3000));
  EXPECT_GE(subscription_->Stats().oldest_unacked_age, absl::Seconds(8));

  // It acks the oldest: the lag is the next oldest's age; then nothing is left.
  const auto& oldest = received[0].partition == 0 ? received[0] : received[1];
  const auto& newest = received[0].partition == 0 ? received[1] : received[0];
  subscription_->Ack(1, {oldest.delivery_id});
  EXPECT_EQ(subscription_->Stats().oldest_unacked_age, age_of(now_ms));
  EXPECT_LT(subscription_->Stats().oldest_unacked_age, absl::Seconds(6));
  subscription_->Ack(1, {newest.delivery_id});
  EXPECT_EQ(subscription_->Stats().oldest_unacked_age, absl::ZeroDuration());
}

TEST_F(SubscriptionTest, NeverCommitsPastAnUnackedRecord) {
  Start();
  FakeStream& stream = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &stream, 100));
  group_.Assign({kP0});
  group_.Fetch(Records(kP0, 0, 4));
  const std::vector<FakeStream::Received> received = stream.AwaitReceived(4);
  ASSERT_EQ(received.size(), 4u);
  // Offsets 0, 1 and 3 acked; 2 not.
  subscription_->Ack(1, {received[0].delivery_id, received[1].delivery_id,
                         received[3].delivery_id});
  Advance(absl::Seconds(1));
  ASSERT_TRUE(group_.Cycle());
  EXPECT_THAT(group_.committed(), ElementsAre(Pair(kP0, 2)));
  subscription_->Ack(1, {received[2].delivery_id});
  Advance(absl::Seconds(1));
  ASSERT_TRUE(group_.Cycle());
  EXPECT_THAT(group_.committed(), ElementsAre(Pair(kP0, 4)));
}

TEST_F(SubscriptionTest, PausesAtTheBufferBoundAndResumesAtAQuarterOfIt) {
  options_.max_buffered_records = 8;
  Start();
  group_.Assign({kP0, kP1});
  // No stream yet: every record waits in the subscription.
  group_.Fetch(Records(kP0, 0, 8));
  ASSERT_TRUE(group_.Cycle());
  EXPECT_THAT(group_.paused(), UnorderedElementsAre(kP0, kP1));
  EXPECT_EQ(metrics_.pauses.load(), 1);

  // A stream takes 5: 3 wait, above a quarter of 8.
  FakeStream& stream = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &stream, 5));
  const std::vector<FakeStream::Received> first = stream.AwaitReceived(5);
  ASSERT_EQ(first.size(), 5u);
  ASSERT_TRUE(group_.Cycle());
  EXPECT_THAT(group_.paused(), UnorderedElementsAre(kP0, kP1));

  // One ack lets one more go: 2 wait, and the partitions resume. The poll waits an hour (the
  // partitions are paused: no records come); the ack that brings the queue down to the mark
  // wakes it, so the app is not left to drain the queue and wait.
  subscription_->Ack(1, {first[0].delivery_id});
  ASSERT_EQ(stream.AwaitReceived(6).size(), 6u);
  EXPECT_TRUE(WaitUntil([&] { return group_.paused().empty(); }, absl::Seconds(30)));
  EXPECT_EQ(metrics_.pauses.load(), 1);
}

TEST_F(SubscriptionTest, AStreamBackWithinTheLingerKeepsTheMembershipAndTheLastOneGoneEndsIt) {
  options_.kafka_unavailable_timeout = absl::Hours(1);  // the clock jumps past 10 s of silence
  Start();
  FakeStream& first = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &first, 100));
  subscription_->Detach(1);
  Advance(absl::Milliseconds(4'999));
  EXPECT_FALSE(group_.closed());

  // Back within the linger: the same membership, and the linger counts again from the next
  // stream's end.
  FakeStream& second = NewStream();
  ASSERT_TRUE(subscription_->Attach(2, &second, 100));
  Advance(absl::Seconds(10));
  EXPECT_FALSE(group_.closed());
  subscription_->Detach(2);
  Advance(absl::Milliseconds(4'999));
  EXPECT_FALSE(group_.closed());
  clock_.Advance(absl::Milliseconds(1));
  group_.Cycle();
  ASSERT_TRUE(group_.AwaitClosed(kWait));
  EXPECT_TRUE(group_.left());
  ASSERT_TRUE(subscription_->AwaitClosed(kWait));
  // A stream after that needs a new membership.
  FakeStream& third = NewStream();
  EXPECT_FALSE(subscription_->Attach(3, &third, 100));
  EXPECT_EQ(group_.subscribed_topics(), std::vector<std::string>{"orders"});
}

TEST_F(SubscriptionTest, KafkaSilentPastTheTimeoutEndsTheStreamsWithUnavailable) {
  Start();
  FakeStream& stream = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &stream, 100));
  // An idle topic while Kafka answers its metadata checks: never a verdict.
  for (int second = 0; second < 15; ++second) Advance(absl::Seconds(1));
  EXPECT_FALSE(stream.ended().has_value());
  EXPECT_GE(group_.reachability_checks(), 14);

  // Kafka stops answering: checks keep coming, and 10 s after the last answer the streams end.
  group_.SetReachable(false);
  for (int second = 0; second < 9; ++second) Advance(absl::Seconds(1));
  EXPECT_FALSE(stream.ended().has_value());
  clock_.Advance(absl::Seconds(1));
  group_.Cycle();
  ASSERT_TRUE(subscription_->AwaitClosed(kWait));
  std::optional<absl::Status> ended = stream.ended();
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->code(), absl::StatusCode::kUnavailable) << *ended;
  EXPECT_THAT(ended->message(), HasSubstr("--kafka_unavailable_timeout_ms"));
  EXPECT_TRUE(group_.left());
}

TEST_F(SubscriptionTest, ARevokedPartitionCommitsWhatWasAckedAndItsRecordsInFlightGoStale) {
  Start();
  FakeStream& stream = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &stream, 100));
  group_.Assign({kP0, kP1});
  group_.Fetch(Records(kP0, 0, 3));
  group_.Fetch(Records(kP1, 0, 3));
  const std::vector<FakeStream::Received> received = stream.AwaitReceived(6);
  ASSERT_EQ(received.size(), 6u);
  std::vector<uint64_t> p0_unacked;
  for (const auto& r : received) {
    if (r.partition == 0 && r.offset < 2) {
      subscription_->Ack(1, {r.delivery_id});
    } else if (r.partition == 0) {
      p0_unacked.push_back(r.delivery_id);
    }
  }

  group_.Revoke({kP0});
  ASSERT_TRUE(group_.Cycle());
  // Committed before the partition moved, synchronously, up to the first unacked record.
  EXPECT_THAT(group_.committed(), ElementsAre(Pair(kP0, 2)));
  EXPECT_EQ(metrics_.records_revoked.load(), 1);
  // Its record in flight now belongs to another member: an ack of it counts as stale, and
  // moves nothing.
  subscription_->Ack(1, p0_unacked);
  EXPECT_EQ(metrics_.unknown_acks.load(), 1);
  Advance(absl::Seconds(1));
  ASSERT_TRUE(group_.Cycle());
  // The kept partition's commit is where it started: nothing of it was acked.
  EXPECT_THAT(group_.committed(), ElementsAre(Pair(kP0, 2), Pair(kP1, 0)));
  // The partition kept goes on.
  EXPECT_EQ(subscription_->Stats().assigned_partitions, 1u);
}

constexpr char kKafkaRefusal[] =
    "joining group 'orders-readers' offering partition.assignment.strategy cooperative-sticky: "
    "Broker: Inconsistent group protocol (INCONSISTENT_GROUP_PROTOCOL)";

TEST_F(SubscriptionTest, AGroupProtocolMismatchEndsEveryStreamNamingTheFlagAndLeaves) {
  Start();
  FakeStream& first = NewStream();
  FakeStream& second = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &first, 10));
  ASSERT_TRUE(subscription_->Attach(2, &second, 10));

  group_.FailNextPoll(broker::GroupProtocolMismatchError(
      absl::FailedPreconditionError(kKafkaRefusal), "cooperative-sticky"));
  ASSERT_TRUE(subscription_->AwaitClosed(kWait));

  for (FakeStream* stream : {&first, &second}) {
    std::optional<absl::Status> ended = stream->ended();
    ASSERT_TRUE(ended.has_value());
    EXPECT_EQ(ended->code(), absl::StatusCode::kFailedPrecondition) << *ended;
    EXPECT_THAT(ended->message(), HasSubstr("group 'orders-readers'"));
    EXPECT_THAT(ended->message(), HasSubstr("cooperative-sticky (--assignment_strategy)"));
    EXPECT_THAT(ended->message(), HasSubstr("INCONSISTENT_GROUP_PROTOCOL"));
  }
  EXPECT_EQ(metrics_.group_protocol_mismatches.load(), 1);
  // It left the group, and takes no stream: a later one gets a new membership.
  EXPECT_TRUE(group_.closed());
  EXPECT_TRUE(group_.left());
  FakeStream& later = NewStream();
  EXPECT_FALSE(subscription_->Attach(3, &later, 10));
  EXPECT_EQ(metrics_.streams.load(), 0);
}

// Another permanent error ends the streams with Kafka's own status, and is no mismatch.
TEST_F(SubscriptionTest, AFatalErrorEndsTheStreamsAsItIsAndCountsNoMismatch) {
  Start();
  FakeStream& stream = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &stream, 10));

  const absl::Status fenced = absl::FailedPreconditionError(
      "group 'orders-readers': Fatal consumer error: Broker: Static consumer fenced by other "
      "consumer with same group.instance.id");
  group_.FailNextPoll(fenced);
  ASSERT_TRUE(subscription_->AwaitClosed(kWait));

  EXPECT_EQ(stream.ended(), fenced);
  EXPECT_EQ(metrics_.group_protocol_mismatches.load(), 0);
}

TEST_F(SubscriptionTest, AGivenUpRecordIsCommittedOnlyOnceItsDeadLetterIsWrittenRetryingFailures) {
  options_.dispatch.policy.min_backoff = absl::Milliseconds(300);
  options_.dispatch.policy.max_backoff = absl::Seconds(10);
  options_.dispatch.policy.dead_letter_topic = "orders.dlq";
  options_.dispatch.policy.max_delivery_attempts = 2;
  Start();
  FakeStream& stream = NewStream();
  ASSERT_TRUE(subscription_->Attach(1, &stream, 100));
  group_.Assign({kP0});
  group_.Fetch(Records(kP0, 0, 3));
  std::vector<FakeStream::Received> received = stream.AwaitReceived(3);
  ASSERT_EQ(received.size(), 3u);
  subscription_->Ack(1, {received[1].delivery_id, received[2].delivery_id});
  subscription_->Nack(1, {received[0].delivery_id});
  EXPECT_EQ(metrics_.records_retried.load(), 1);
  EXPECT_EQ(subscription_->Stats().waiting_retry, 1u);

  // The second delivery comes after the backoff, not before.
  Advance(absl::Milliseconds(299));
  EXPECT_EQ(stream.received().size(), 3u);
  Advance(absl::Milliseconds(1));
  received = stream.AwaitReceived(4);
  ASSERT_EQ(received.size(), 4u);
  EXPECT_EQ(received[3].offset, 0);

  // Nacked on its last attempt: written to the dead-letter topic, with the app's reason.
  subscription_->Nack(1, {received[3].delivery_id}, /*dead_letter=*/false, "unparseable");
  ASSERT_EQ(dead_letters_.records().size(), 1u);
  const FakeProducer::Record written = dead_letters_.records()[0];
  EXPECT_EQ(written.topic, "orders.dlq");
  EXPECT_EQ(written.key, std::optional<std::string>("key-0"));
  EXPECT_EQ(written.value, "value");
  std::map<std::string, std::string> headers;
  for (const broker::Header& h : written.headers) headers[h.key] = h.value;
  EXPECT_EQ(headers["dlq.original.offset"], "0");
  EXPECT_EQ(headers["dlq.delivery.attempts"], "2");
  EXPECT_EQ(headers["dlq.group"], "orders-readers");
  EXPECT_EQ(headers["dlq.reason"], "unparseable");
  EXPECT_EQ(subscription_->Stats().dead_lettering, 1u);

  // Until Kafka has the dead letter, the commit does not pass the record.
  Advance(absl::Seconds(1));
  ASSERT_TRUE(group_.Cycle());
  EXPECT_LT(group_.committed()[kP0], 1);
  // A failed write is tried again after its backoff, and still nothing passes it.
  dead_letters_.Answer(0, absl::UnavailableError("brokers down"));
  EXPECT_EQ(metrics_.dead_letter_write_failures.load(), 1);
  Advance(absl::Milliseconds(199));
  EXPECT_EQ(dead_letters_.records().size(), 1u);
  Advance(absl::Milliseconds(1));
  ASSERT_EQ(dead_letters_.records().size(), 2u);
  EXPECT_EQ(dead_letters_.records()[1].value, "value");
  Advance(absl::Seconds(1));
  ASSERT_TRUE(group_.Cycle());
  EXPECT_LT(group_.committed()[kP0], 1);

  dead_letters_.Answer(1, absl::OkStatus());
  EXPECT_EQ(metrics_.records_dead_lettered.load(), 1);
  Advance(absl::Seconds(1));
  ASSERT_TRUE(group_.Cycle());
  EXPECT_THAT(group_.committed(), ElementsAre(Pair(kP0, 3)));
  const SubscriptionStats stats = subscription_->Stats();
  EXPECT_EQ(stats.dead_lettered, 1u);
  EXPECT_EQ(stats.dead_lettering, 0u);
  EXPECT_EQ(stats.waiting_retry, 0u);
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
