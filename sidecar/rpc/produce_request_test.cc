#include "sidecar/rpc/produce_request.h"

#include <gtest/gtest.h>

namespace kafka_sidecar::sidecar {
namespace {

TEST(SendNowPolicyTest, AsksOnlyWhenTheWindowIsFull) {
  SendNowPolicy policy(10);
  for (int pending = 1; pending < 10; ++pending) EXPECT_FALSE(policy.Accepted(1, pending));
  EXPECT_TRUE(policy.Accepted(1, 10));
}

TEST(SendNowPolicyTest, AsksAgainOnlyOnceHalfAWindowCameSinceItLastAsked) {
  SendNowPolicy policy(10);
  EXPECT_TRUE(policy.Accepted(10, 10));
  // Answers trickle back and free one slot at a time: each new record refills the window.
  for (int record = 1; record < 5; ++record) EXPECT_FALSE(policy.Accepted(1, 10)) << record;
  EXPECT_TRUE(policy.Accepted(1, 10));
  EXPECT_FALSE(policy.Accepted(1, 10));
}

TEST(SendNowPolicyTest, RecordsAcceptedBelowAFullWindowCount) {
  SendNowPolicy policy(10);
  EXPECT_FALSE(policy.Accepted(3, 3));
  EXPECT_FALSE(policy.Accepted(1, 9));
  // Five since it never asked: the window fills and half of it was not asked for.
  EXPECT_TRUE(policy.Accepted(1, 10));
}

TEST(SendNowPolicyTest, ABatchLargerThanTheWindowAsks) {
  SendNowPolicy policy(10);
  EXPECT_TRUE(policy.Accepted(25, 25));
  EXPECT_TRUE(policy.Accepted(25, 30));
}

TEST(SendNowPolicyTest, AWindowOfOneAsksForEveryRecord) {
  SendNowPolicy policy(1);
  for (int record = 0; record < 3; ++record) EXPECT_TRUE(policy.Accepted(1, 1));
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
