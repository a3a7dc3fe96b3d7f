// The registry on scripted groups (testing/fake_group.h): one subscription per group and topic
// set, shared by its streams, and at most --max_subscriptions of them.

#include "sidecar/consume/subscription_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "testing/fake_group.h"
#include "testing/simulated_clock.h"

namespace kafka_sidecar::sidecar {
namespace {

using ::kafka_sidecar::testing::FakeGroup;
using ::kafka_sidecar::testing::SimulatedClock;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(30);

class NoStream final : public ConsumerStream {
 public:
  void Send(WireResponse) override {}
  void End(const absl::Status&) override {}
};

class SubscriptionRegistryTest : public ::testing::Test {
 protected:
  std::unique_ptr<SubscriptionRegistry> NewRegistry(size_t max_subscriptions) {
    SubscriptionOptions defaults;
    defaults.linger = absl::ZeroDuration();
    defaults.poll_timeout = absl::Hours(1);  // the loops turn when the test says
    return std::make_unique<SubscriptionRegistry>(
        defaults, max_subscriptions,
        [this](const std::string& group, int member) {
          const std::string name = group + "/" + std::to_string(member);
          made_.push_back(name);
          return absl::StatusOr<std::unique_ptr<broker::GroupConsumer>>(
              groups_[name].NewConsumer());
        },
        nullptr, nullptr, clock_, metrics_);
  }

  // Attaches a new stream; the subscription's status.
  absl::Status Attach(SubscriptionRegistry& registry, const std::string& group,
                      const std::vector<std::string>& topics, uint64_t stream_id) {
    return registry.Attach(group, topics, DeliveryPolicy{}, stream_id, &stream_, 10).status();
  }

  // Kafka as each member sees it, by "group/member"; they outlive the registry's consumers.
  std::map<std::string, FakeGroup> groups_;
  std::vector<std::string> made_;
  SimulatedClock clock_;
  ConsumeMetrics metrics_;
  NoStream stream_;
};

TEST_F(SubscriptionRegistryTest, StreamsOfOneGroupAndTopicSetShareOneSubscription) {
  auto registry = NewRegistry(10);
  absl::StatusOr<std::shared_ptr<Subscription>> a =
      registry->Attach("readers", {"orders", "refunds"}, DeliveryPolicy{}, 1, &stream_, 10);
  absl::StatusOr<std::shared_ptr<Subscription>> b =
      registry->Attach("readers", {"refunds", "orders", "orders"}, DeliveryPolicy{}, 2,
                       &stream_, 10);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  // Another topic set of the group is another member (its own static id index).
  ASSERT_TRUE(Attach(*registry, "readers", {"orders"}, 3).ok());
  EXPECT_EQ(made_, (std::vector<std::string>{"readers/0", "readers/1"}));
  EXPECT_EQ(registry->open_subscriptions(), 2u);
  EXPECT_EQ(groups_["readers/0"].subscribed_topics(),
            (std::vector<std::string>{"orders", "refunds"}));
}

TEST_F(SubscriptionRegistryTest, AStreamAskingForOtherPoliciesThanItsSubscriptionIsRefused) {
  auto registry = NewRegistry(10);
  DeliveryPolicy retry;
  retry.min_backoff = absl::Milliseconds(300);
  retry.max_backoff = absl::Seconds(5);
  ASSERT_TRUE(registry->Attach("readers", {"orders"}, retry, 1, &stream_, 10).ok());
  ASSERT_TRUE(registry->Attach("readers", {"orders"}, retry, 2, &stream_, 10).ok());

  absl::Status other = registry->Attach("readers", {"orders"}, DeliveryPolicy{}, 3, &stream_, 10)
                           .status();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition) << other;
  EXPECT_THAT(other.message(), HasSubstr("subscribe.retry_policy"));
  EXPECT_THAT(other.message(), HasSubstr("min_backoff_ms=300 max_backoff_ms=5000"));

  DeliveryPolicy dead = retry;
  dead.dead_letter_topic = "orders.dlq";
  other = registry->Attach("readers", {"orders"}, dead, 4, &stream_, 10).status();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition) << other;
  EXPECT_THAT(other.message(), HasSubstr("subscribe.dead_letter_policy"));
  // Another group is another subscription, with its own policies (this registry has no
  // producer to write dead letters with).
  EXPECT_EQ(registry->Attach("others", {"orders"}, dead, 5, &stream_, 10).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(registry->Attach("others", {"orders"}, DeliveryPolicy{}, 6, &stream_, 10).ok());
}

TEST_F(SubscriptionRegistryTest, AStreamThatNeedsOneMoreThanMaxSubscriptionsIsResourceExhausted) {
  auto registry = NewRegistry(2);
  ASSERT_TRUE(Attach(*registry, "a", {"orders"}, 1).ok());
  ASSERT_TRUE(Attach(*registry, "b", {"orders"}, 2).ok());
  ASSERT_TRUE(Attach(*registry, "a", {"orders"}, 3).ok());  // no new one needed

  absl::Status refused = Attach(*registry, "c", {"orders"}, 4);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("2 (--max_subscriptions)"));
  EXPECT_THAT(refused.message(), HasSubstr("group 'c'"));
  EXPECT_EQ(groups_.count("c/0"), 0u);  // no consumer was made for it

  // b's only stream leaves: b leaves its group (no linger), and makes room.
  auto b = registry->Attach("b", {"orders"}, DeliveryPolicy{}, 5, &stream_, 10);
  ASSERT_TRUE(b.ok());
  (*b)->Detach(2);
  (*b)->Detach(5);
  ASSERT_TRUE(groups_["b/0"].Cycle());
  ASSERT_TRUE((*b)->AwaitClosed(kWait));
  EXPECT_TRUE(Attach(*registry, "c", {"orders"}, 6).ok());
  EXPECT_EQ(registry->open_subscriptions(), 2u);
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
