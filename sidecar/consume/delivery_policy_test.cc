#include "sidecar/consume/delivery_policy.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace kafka_sidecar::sidecar {
namespace {

TEST(DeliveryPolicyTest, BackoffDoublesPerNackUpToItsCap) {
  DeliveryPolicy policy;
  policy.min_backoff = absl::Milliseconds(300);
  policy.max_backoff = absl::Seconds(2);
  EXPECT_EQ(policy.Backoff(1), absl::Milliseconds(300));
  EXPECT_EQ(policy.Backoff(2), absl::Milliseconds(600));
  EXPECT_EQ(policy.Backoff(3), absl::Milliseconds(1200));
  EXPECT_EQ(policy.Backoff(4), absl::Seconds(2));
  EXPECT_EQ(policy.Backoff(1000), absl::Seconds(2));
}

TEST(DeliveryPolicyTest, NoMaxMeansTheMinAndNoMinMeansAtOnce) {
  DeliveryPolicy policy;
  EXPECT_EQ(policy.Backoff(3), absl::ZeroDuration());
  policy.min_backoff = absl::Milliseconds(50);
  EXPECT_EQ(policy.Backoff(1), absl::Milliseconds(50));
  EXPECT_EQ(policy.Backoff(5), absl::Milliseconds(50));
}

TEST(DeliveryPolicyTest, GivesUpOnTheLastAttemptOrWhenAskedAndOnlyWithATopic) {
  DeliveryPolicy policy;
  policy.max_delivery_attempts = 3;
  EXPECT_FALSE(policy.GivesUp(3, /*dead_letter=*/true)) << "no dead-letter topic";
  policy.dead_letter_topic = "orders.dlq";
  EXPECT_FALSE(policy.GivesUp(2, false));
  EXPECT_TRUE(policy.GivesUp(3, false));
  EXPECT_TRUE(policy.GivesUp(1, true));
  policy.max_delivery_attempts = 0;
  EXPECT_FALSE(policy.GivesUp(100, false)) << "0: only when asked";
  EXPECT_TRUE(policy.GivesUp(1, true));
}

TEST(DeliveryPolicyTest, TheDeadLetterRecordKeepsTheRecordAndSaysWhereItCameFrom) {
  DeliveryPolicy policy;
  policy.dead_letter_topic = "orders.dlq";
  broker::Message record;
  record.tp = {"orders", 4};
  record.offset = 1042;
  record.key = "user-1";
  record.value = "payload";
  record.headers = {{"trace", "abc"}};
  record.timestamp_ms = 1700000000123;
  DeadLetterRecord dead = MakeDeadLetterRecord(policy, record, "billing", 3, "bad amount");
  EXPECT_EQ(dead.topic, "orders.dlq");
  EXPECT_EQ(dead.key, std::optional<std::string>("user-1"));
  EXPECT_EQ(dead.value, "payload");
  std::map<std::string, std::string> headers;
  for (const broker::Header& h : dead.headers) headers[h.key] = h.value;
  EXPECT_EQ(headers, (std::map<std::string, std::string>{
                         {"trace", "abc"},
                         {"dlq.original.topic", "orders"},
                         {"dlq.original.partition", "4"},
                         {"dlq.original.offset", "1042"},
                         {"dlq.original.timestamp_ms", "1700000000123"},
                         {"dlq.group", "billing"},
                         {"dlq.delivery.attempts", "3"},
                         {"dlq.reason", "bad amount"},
                     }));
  record.key.reset();
  EXPECT_FALSE(MakeDeadLetterRecord(policy, record, "billing", 1, "").key.has_value())
      << "a null key stays null";
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
