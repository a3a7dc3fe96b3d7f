// How a subscription ends on Kafka's permanent errors, with a fake consumer (librdkafka's mock
// cluster cannot make some of them: an INCONSISTENT_GROUP_PROTOCOL join aborts it; the real
// broker's case is testing/kafka/mixed_group_test.cc).

#include "sidecar/subscription.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace kafka_sidecar::sidecar {
namespace {

using ::testing::HasSubstr;

constexpr char kKafkaRefusal[] =
    "joining group 'orders-readers' offering partition.assignment.strategy cooperative-sticky: "
    "Broker: Inconsistent group protocol (INCONSISTENT_GROUP_PROTOCOL)";

// What the fake consumer did, kept by the test: the subscription destroys the consumer once it
// has left the group.
struct FakeGroup {
  absl::Notification closed;
  std::atomic<bool> left{false};  // closed with Departure::kLeave
};

// A group member that fetches nothing; its Poll returns the errors the test queues, in order.
class FakeConsumer final : public broker::GroupConsumer {
 public:
  explicit FakeConsumer(FakeGroup& group) : group_(group) {}

  // The next Poll returns `status` (any thread).
  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    errors_.push_back(std::move(status));
  }

  absl::Status Subscribe(const std::vector<std::string>&, broker::RebalanceListener*) override {
    return absl::OkStatus();
  }
  absl::Status Poll(absl::Duration timeout, size_t, std::vector<broker::Message>&) override {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !errors_.empty() || woken_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    woken_ = false;
    if (errors_.empty()) return absl::OkStatus();
    absl::Status status = std::move(errors_.front());
    errors_.pop_front();
    return status;
  }
  void Wake() override {
    absl::MutexLock lock(&mu_);
    woken_ = true;
  }
  size_t Prefetched() override { return 0; }
  void Pause(const std::vector<broker::TopicPartition>&) override {}
  void Resume(const std::vector<broker::TopicPartition>&) override {}
  void CommitAsync(const std::vector<broker::PartitionOffset>&, broker::CommitCallback) override {}
  absl::Status CommitSync(const std::vector<broker::PartitionOffset>&) override {
    return absl::OkStatus();
  }
  absl::Status CheckReachable(absl::Duration) override { return absl::OkStatus(); }
  std::vector<int64_t> HighWatermarks(const std::vector<broker::TopicPartition>& tps) override {
    return std::vector<int64_t>(tps.size(), -1);
  }
  void Close(absl::Duration, Departure departure) override {
    group_.left = departure == Departure::kLeave;
    group_.closed.Notify();
  }

 private:
  FakeGroup& group_;
  absl::Mutex mu_;
  std::deque<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
};

// An app stream that only notes how it ended (the subscription calls End under its lock).
class FakeStream final : public ConsumerStream {
 public:
  void Send(ArenaResponse) override {}
  void End(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ended_ = status;
  }
  std::optional<absl::Status> ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  absl::Mutex mu_;
  std::optional<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
};

class SubscriptionTest : public ::testing::Test {
 protected:
  SubscriptionTest() {
    auto consumer = std::make_unique<FakeConsumer>(group_);
    consumer_ = consumer.get();
    SubscriptionOptions options;
    options.group = "orders-readers";
    options.topics = {"orders"};
    options.poll_timeout = absl::Milliseconds(10);
    subscription_ =
        std::make_unique<Subscription>(options, std::move(consumer), Clock::Real(), metrics_);
  }

  FakeGroup group_;
  ConsumeMetrics metrics_;
  FakeConsumer* consumer_;  // owned by subscription_ until it has left the group
  std::unique_ptr<Subscription> subscription_;
};

TEST_F(SubscriptionTest, AGroupProtocolMismatchEndsEveryStreamNamingTheFlagAndLeaves) {
  ASSERT_TRUE(subscription_->Start().ok());
  FakeStream first;
  FakeStream second;
  ASSERT_TRUE(subscription_->Attach(1, &first, 10));
  ASSERT_TRUE(subscription_->Attach(2, &second, 10));

  consumer_->Fail(broker::GroupProtocolMismatchError(
      absl::FailedPreconditionError(kKafkaRefusal), "cooperative-sticky"));
  ASSERT_TRUE(subscription_->AwaitClosed(absl::Seconds(30)));

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
  EXPECT_TRUE(group_.closed.HasBeenNotified());
  EXPECT_TRUE(group_.left);
  FakeStream later;
  EXPECT_FALSE(subscription_->Attach(3, &later, 10));
  EXPECT_EQ(metrics_.streams.load(), 0);
}

// Another permanent error ends the streams with Kafka's own status, and is no mismatch.
TEST_F(SubscriptionTest, AFatalErrorEndsTheStreamsAsItIsAndCountsNoMismatch) {
  ASSERT_TRUE(subscription_->Start().ok());
  FakeStream stream;
  ASSERT_TRUE(subscription_->Attach(1, &stream, 10));

  const absl::Status fenced = absl::FailedPreconditionError(
      "group 'orders-readers': Fatal consumer error: Broker: Static consumer fenced by other "
      "consumer with same group.instance.id");
  consumer_->Fail(fenced);
  ASSERT_TRUE(subscription_->AwaitClosed(absl::Seconds(30)));

  EXPECT_EQ(stream.ended(), fenced);
  EXPECT_EQ(metrics_.group_protocol_mismatches.load(), 0);
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
