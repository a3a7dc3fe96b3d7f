#include "broker/offset_tracker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace kafka_sidecar::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

TEST(PartitionOffsetsTest, NothingTrackedNothingCommittable) {
  PartitionOffsets offsets;
  EXPECT_EQ(offsets.Committable(), std::nullopt);
}

TEST(PartitionOffsetsTest, CommittableStopsAtLowestUnacked) {
  PartitionOffsets offsets;
  for (int64_t o = 10; o < 15; ++o) ASSERT_TRUE(offsets.Track(o));
  EXPECT_THAT(offsets.Committable(), Optional(10));
  EXPECT_TRUE(offsets.Ack(11));
  EXPECT_TRUE(offsets.Ack(12));
  EXPECT_THAT(offsets.Committable(), Optional(10));
  EXPECT_TRUE(offsets.Ack(10));
  EXPECT_THAT(offsets.Committable(), Optional(13));
  EXPECT_TRUE(offsets.Ack(14));
  EXPECT_TRUE(offsets.Ack(13));
  EXPECT_THAT(offsets.Committable(), Optional(15));
  EXPECT_EQ(offsets.unacked(), 0u);
}

TEST(PartitionOffsetsTest, GapsInOffsetsAreSkipped) {
  PartitionOffsets offsets;
  offsets.Track(3);
  offsets.Track(7);  // 4..6 were compacted away
  offsets.Track(8);
  EXPECT_TRUE(offsets.Ack(3));
  EXPECT_THAT(offsets.Committable(), Optional(7));
  EXPECT_TRUE(offsets.Ack(8));
  EXPECT_TRUE(offsets.Ack(7));
  EXPECT_THAT(offsets.Committable(), Optional(9));
}

TEST(PartitionOffsetsTest, UnknownDuplicateAndOldAcksAreRefused) {
  PartitionOffsets offsets;
  offsets.Track(1);
  offsets.Track(2);
  EXPECT_FALSE(offsets.Ack(5));  // never tracked
  EXPECT_TRUE(offsets.Ack(2));
  EXPECT_FALSE(offsets.Ack(2));  // twice
  EXPECT_TRUE(offsets.Ack(1));
  EXPECT_FALSE(offsets.Ack(1));  // below the committable point now
  EXPECT_THAT(offsets.Committable(), Optional(3));
}

TEST(PartitionOffsetsTest, RefetchedOffsetsAreIgnored) {
  PartitionOffsets offsets;
  offsets.Track(5);
  EXPECT_FALSE(offsets.Track(5));
  EXPECT_FALSE(offsets.Track(4));
  EXPECT_EQ(offsets.unacked(), 1u);
}

// Property: for random offset sequences with gaps and random ack orders, after every ack the
// committable offset is exactly the lowest unacked tracked offset (or one past the highest
// tracked when all are acked), so it never passes an unacked record.
TEST(PartitionOffsetsTest, PropertyCommittableNeverPassesAnUnackedOffset) {
  std::mt19937_64 rng(20261127);
  for (int round = 0; round < 300; ++round) {
    PartitionOffsets offsets;
    std::vector<int64_t> tracked;
    int64_t next = std::uniform_int_distribution<int64_t>(0, 1000)(rng);
    const int n = std::uniform_int_distribution<int>(1, 200)(rng);
    for (int i = 0; i < n; ++i) {
      next += std::uniform_int_distribution<int>(0, 3)(rng) == 0 ? 1 + rng() % 5 : 1;
      ASSERT_TRUE(offsets.Track(next));
      tracked.push_back(next);
    }
    std::vector<int64_t> order = tracked;
    std::shuffle(order.begin(), order.end(), rng);
    std::set<int64_t> unacked(tracked.begin(), tracked.end());
    const size_t acks = std::uniform_int_distribution<size_t>(0, order.size())(rng);
    for (size_t i = 0; i < acks; ++i) {
      ASSERT_TRUE(offsets.Ack(order[i]));
      unacked.erase(order[i]);
      const int64_t expected = unacked.empty() ? tracked.back() + 1 : *unacked.begin();
      ASSERT_THAT(offsets.Committable(), Optional(expected)) << "round " << round;
      ASSERT_EQ(offsets.unacked(), unacked.size());
    }
  }
}

TEST(OffsetTrackerTest, CommittableOnlyWhereItMovedPastTheLastCommit) {
  OffsetTracker tracker;
  const TopicPartition a{"t", 0};
  const TopicPartition b{"t", 1};
  tracker.Add(a);
  tracker.Add(b);
  tracker.Track(a, 0);
  tracker.Track(a, 1);
  tracker.Track(b, 0);
  EXPECT_THAT(tracker.Committable(), ElementsAre(PartitionOffset{a, 0}, PartitionOffset{b, 0}));
  tracker.MarkCommitted({{a, 0}, {b, 0}});
  EXPECT_TRUE(tracker.Committable().empty());
  tracker.Ack(a, 0);
  EXPECT_THAT(tracker.Committable(), ElementsAre(PartitionOffset{a, 1}));
  EXPECT_THAT(tracker.Committed(a), Optional(0));
}

TEST(OffsetTrackerTest, FailedCommitKeepsAckedStateForTheRetry) {
  OffsetTracker tracker;
  const TopicPartition a{"t", 0};
  tracker.Add(a);
  for (int o = 0; o < 4; ++o) tracker.Track(a, o);
  tracker.Ack(a, 0);
  tracker.Ack(a, 1);
  // A commit of {a, 2} fails: nothing is marked, the same offset is committable again.
  EXPECT_THAT(tracker.Committable(), ElementsAre(PartitionOffset{a, 2}));
  tracker.Ack(a, 2);
  EXPECT_THAT(tracker.Committable(), ElementsAre(PartitionOffset{a, 3}));
}

TEST(OffsetTrackerTest, RemovedPartitionMakesAcksStale) {
  OffsetTracker tracker;
  const TopicPartition a{"t", 0};
  tracker.Add(a);
  tracker.Track(a, 0);
  tracker.Remove(a);
  EXPECT_FALSE(tracker.Ack(a, 0));
  EXPECT_FALSE(tracker.Track(a, 1));
  EXPECT_TRUE(tracker.Committable().empty());
  EXPECT_EQ(tracker.unacked(), 0u);
}

TEST(OffsetTrackerTest, OldestUnackedTimestampIsTheEarliestPartitionFront) {
  OffsetTracker tracker;
  const TopicPartition a{"t", 0};
  const TopicPartition b{"t", 1};
  tracker.Add(a);
  tracker.Add(b);
  EXPECT_EQ(tracker.OldestUnackedTimestampMs(), std::nullopt);
  tracker.Track(a, 0, 500);
  tracker.Track(a, 1, 100);  // timestamps need not grow with offsets: the front counts
  tracker.Track(b, 0, 300);
  tracker.Track(b, 1, -1);  // no timestamp
  EXPECT_THAT(tracker.OldestUnackedTimestampMs(), Optional(300));
  tracker.Ack(b, 0);  // b's front has no timestamp now: only a's counts
  EXPECT_THAT(tracker.OldestUnackedTimestampMs(), Optional(500));
  tracker.Ack(a, 0);
  EXPECT_THAT(tracker.OldestUnackedTimestampMs(), Optional(100));
  tracker.Ack(a, 1);
  tracker.Ack(b, 1);
  EXPECT_EQ(tracker.OldestUnackedTimestampMs(), std::nullopt);
}

}  // namespace
}  // namespace kafka_sidecar::broker
