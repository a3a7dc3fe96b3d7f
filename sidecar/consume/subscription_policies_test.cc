#include "sidecar/consume/subscription_policies.h"

#include <gtest/gtest.h>

#include "absl/time/time.h"

namespace kafka_sidecar::sidecar {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

absl::Time At(absl::Duration since_start) { return kStart + since_start; }

TEST(CommitScheduleTest, CommitsEveryIntervalOneAtATime) {
  CommitSchedule schedule(absl::Seconds(1), absl::Seconds(30), kStart);
  EXPECT_FALSE(schedule.Due(At(absl::Milliseconds(999))));
  ASSERT_TRUE(schedule.Due(At(absl::Seconds(1))));
  schedule.Started();
  // In flight: not due again however long it takes.
  EXPECT_FALSE(schedule.Due(At(absl::Seconds(10))));
  schedule.Succeeded(At(absl::Seconds(10)));
  EXPECT_FALSE(schedule.Due(At(absl::Milliseconds(10'999))));
  EXPECT_TRUE(schedule.Due(At(absl::Seconds(11))));
}

TEST(CommitScheduleTest, NothingToCommitLooksAgainAfterTheInterval) {
  CommitSchedule schedule(absl::Seconds(1), absl::Seconds(30), kStart);
  ASSERT_TRUE(schedule.Due(At(absl::Seconds(1))));
  schedule.NothingToCommit(At(absl::Seconds(1)));
  EXPECT_FALSE(schedule.Due(At(absl::Milliseconds(1'999))));
  EXPECT_TRUE(schedule.Due(At(absl::Seconds(2))));
}

TEST(CommitScheduleTest, FailuresBackOffDoublingToTheCapAndASuccessResetsIt) {
  CommitSchedule schedule(absl::Seconds(1), absl::Seconds(5), kStart);
  absl::Time now = At(absl::Seconds(1));
  for (absl::Duration expected : {absl::Seconds(2), absl::Seconds(4), absl::Seconds(5),
                                  absl::Seconds(5)}) {
    ASSERT_TRUE(schedule.Due(now));
    schedule.Started();
    EXPECT_EQ(schedule.Failed(now), expected);
    EXPECT_FALSE(schedule.Due(now + expected - absl::Milliseconds(1)));
    now += expected;
  }
  ASSERT_TRUE(schedule.Due(now));
  schedule.Started();
  schedule.Succeeded(now);
  EXPECT_TRUE(schedule.Due(now + absl::Seconds(1)));
  schedule.Started();
  EXPECT_EQ(schedule.Failed(now + absl::Seconds(1)), absl::Seconds(2));
}

TEST(KafkaLivenessTest, ChecksAfterATenthOfTheTimeoutOfSilenceAndOncePerInterval) {
  KafkaLiveness liveness(absl::Seconds(10), kStart);
  EXPECT_EQ(liveness.Judge(At(absl::Milliseconds(999))).check, absl::ZeroDuration());
  KafkaLiveness::Verdict first = liveness.Judge(At(absl::Seconds(1)));
  EXPECT_EQ(first.check, absl::Seconds(1));
  EXPECT_EQ(first.unreachable_for, absl::ZeroDuration());
  // One check per interval while the silence lasts.
  EXPECT_EQ(liveness.Judge(At(absl::Milliseconds(1'500))).check, absl::ZeroDuration());
  EXPECT_EQ(liveness.Judge(At(absl::Seconds(2))).check, absl::Seconds(1));
  // News from Kafka: quiet again for a tenth before the next check.
  liveness.Heard(At(absl::Seconds(3)));
  EXPECT_EQ(liveness.Judge(At(absl::Milliseconds(3'999))).check, absl::ZeroDuration());
  EXPECT_EQ(liveness.Judge(At(absl::Seconds(4))).check, absl::Seconds(1));
}

TEST(KafkaLivenessTest, SilencePastTheTimeoutIsTheVerdict) {
  KafkaLiveness liveness(absl::Seconds(10), kStart);
  liveness.Heard(At(absl::Seconds(5)));
  EXPECT_EQ(liveness.Judge(At(absl::Milliseconds(14'999))).unreachable_for, absl::ZeroDuration());
  EXPECT_EQ(liveness.Judge(At(absl::Seconds(15))).unreachable_for, absl::Seconds(10));
}

TEST(KafkaLivenessTest, TheCheckIntervalStaysBetween100MsAnd5s) {
  KafkaLiveness quick(absl::Milliseconds(500), kStart);
  EXPECT_EQ(quick.Judge(At(absl::Milliseconds(99))).check, absl::ZeroDuration());
  EXPECT_EQ(quick.Judge(At(absl::Milliseconds(100))).check, absl::Milliseconds(100));
  KafkaLiveness slow(absl::Minutes(10), kStart);
  EXPECT_EQ(slow.Judge(At(absl::Milliseconds(4'999))).check, absl::ZeroDuration());
  // It waits for the answer at most a second.
  EXPECT_EQ(slow.Judge(At(absl::Seconds(5))).check, absl::Seconds(1));
}

TEST(FlowControlTest, RoomIsWhatFitsUpToOnePoll) {
  FlowControl flow(1000, 1 << 20, 300);
  EXPECT_EQ(flow.Room(0, 0), 300u);
  EXPECT_EQ(flow.Room(800, 0), 200u);
  EXPECT_EQ(flow.Room(1000, 0), 0u);
  EXPECT_EQ(flow.Room(10, 1 << 20), 0u);  // the bytes are full
}

TEST(FlowControlTest, PausesAtTheBoundAndResumesAtAQuarterOfRecordsAndBytes) {
  FlowControl flow(1000, 4000, 300);
  EXPECT_EQ(flow.Update(999, 3999), FlowControl::Change::kNone);
  EXPECT_EQ(flow.Update(1000, 0), FlowControl::Change::kPause);
  EXPECT_TRUE(flow.paused());
  EXPECT_EQ(flow.Update(1200, 0), FlowControl::Change::kNone);  // paused once
  EXPECT_EQ(flow.Update(251, 0), FlowControl::Change::kNone);
  EXPECT_EQ(flow.Update(250, 1001), FlowControl::Change::kNone);  // bytes still above
  EXPECT_EQ(flow.Update(250, 1000), FlowControl::Change::kResume);
  EXPECT_FALSE(flow.paused());
  EXPECT_EQ(flow.Update(10, 4000), FlowControl::Change::kPause);  // bytes alone pause too
}

TEST(FlowControlTest, AWaitingPollIsWokenByRoomOrWhilePausedByTheResumeMark) {
  FlowControl flow(1000, 4000, 300);
  EXPECT_FALSE(flow.ShouldWake(1000, 0));  // full
  EXPECT_TRUE(flow.ShouldWake(999, 0));    // room for one
  ASSERT_EQ(flow.Update(1000, 0), FlowControl::Change::kPause);
  // Paused, room alone brings nothing (no records come): the resume mark does.
  EXPECT_FALSE(flow.ShouldWake(999, 0));
  EXPECT_FALSE(flow.ShouldWake(251, 0));
  EXPECT_FALSE(flow.ShouldWake(250, 1001));
  EXPECT_TRUE(flow.ShouldWake(250, 1000));
}

TEST(LingerTest, RunsFromWhenTheLastStreamWasJudgedGone) {
  Linger linger(absl::Seconds(5), kStart);
  EXPECT_FALSE(linger.Expired(At(absl::Milliseconds(4'999))));
  EXPECT_TRUE(linger.Expired(At(absl::Seconds(5))));
  linger.LastStreamGone(At(absl::Seconds(20)));
  EXPECT_FALSE(linger.Expired(At(absl::Seconds(24))));
  EXPECT_TRUE(linger.Expired(At(absl::Seconds(25))));
  Linger none(absl::ZeroDuration(), kStart);
  EXPECT_TRUE(none.Expired(kStart));
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
