#include "sidecar/rpc/produce_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

constexpr char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContextTest, KeepsAW3CTraceparentAndItsTracestate) {
  TraceContext trace = TraceContext::FromMetadata(kTraceparent, "congo=t61rcWkgMzE");
  EXPECT_EQ(trace.traceparent, kTraceparent);
  EXPECT_EQ(trace.tracestate, "congo=t61rcWkgMzE");
  EXPECT_EQ(trace.header_count(), 2u);
  EXPECT_EQ(TraceContext::FromMetadata(kTraceparent, "").header_count(), 1u);
  // A later version may carry more after the flags.
  EXPECT_FALSE(TraceContext::FromMetadata(
                   "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "")
                   .traceparent.empty());
}

TEST(TraceContextTest, DropsWhatIsNotW3CsFormatAndItsTracestateWithIt) {
  for (const std::string bad : {
           "",
           "garbage",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 is exactly 55
           "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",   // misplaced dash
       }) {
    TraceContext trace = TraceContext::FromMetadata(bad, "congo=t61rcWkgMzE");
    EXPECT_TRUE(trace.traceparent.empty()) << bad;
    EXPECT_EQ(trace.header_count(), 0u) << bad;
  }
}

std::vector<std::string> HeaderKeys(const broker::RecordView& view) {
  std::vector<std::string> keys;
  for (const broker::HeaderView& h : view.headers) keys.push_back(std::string(h.key));
  return keys;
}

TEST(TraceContextTest, ARecordGetsTheCallsTraceUnlessItCarriesItsOwn) {
  const TraceContext trace = TraceContext::FromMetadata(kTraceparent, "congo=t61rcWkgMzE");
  kafka_sidecar::v1::ProduceRequest request;
  request.set_topic("orders");
  auto* header = request.add_headers();
  header->set_key("app");
  header->set_value("1");
  HeaderViews headers;
  broker::RecordView view = ToRecordView(request, headers, trace);
  EXPECT_THAT(HeaderKeys(view), ::testing::ElementsAre("app", "traceparent", "tracestate"));
  EXPECT_EQ(view.headers[1].value, kTraceparent);

  auto* own = request.add_headers();
  own->set_key("TraceParent");
  own->set_value("00-11111111111111111111111111111111-2222222222222222-01");
  HeaderViews again;
  EXPECT_THAT(HeaderKeys(ToRecordView(request, again, trace)),
              ::testing::ElementsAre("app", "TraceParent"));

  HeaderViews none;
  request.clear_headers();
  EXPECT_TRUE(ToRecordView(request, none, TraceContext{}).headers.empty());
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
