// The Consume stream's logic, without gRPC or Kafka: the reactor runs on a fake gRPC stream (the
// test completes its reads and writes) and a registry whose members are scripted groups.

#include "sidecar/rpc/consume_reactor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/consume/subscription_registry.h"
#include "testing/fake_group.h"
#include "testing/fake_server_stream.h"
#include "testing/simulated_clock.h"

namespace kafka_sidecar::sidecar {
namespace {

using broker::Message;
using broker::TopicPartition;
using kafka_sidecar::v1::ConsumeRequest;
using kafka_sidecar::v1::ConsumeResponse;
using ::kafka_sidecar::testing::FakeGroup;
using ::kafka_sidecar::testing::FakeServerStream;
using ::kafka_sidecar::testing::SimulatedClock;
using ::testing::HasSubstr;

const TopicPartition kP0{"orders", 0};

ConsumeRequest Subscribe(const std::string& group, const std::vector<std::string>& topics) {
  ConsumeRequest request;
  request.mutable_subscribe()->set_group(group);
  for (const std::string& topic : topics) request.mutable_subscribe()->add_topics(topic);
  return request;
}

ConsumeRequest Ack(uint64_t delivery_id) {
  ConsumeRequest request;
  request.mutable_ack()->add_delivery_ids(delivery_id);
  return request;
}

class ConsumeReactorTest : public ::testing::Test {
 protected:
  ConsumeReactorTest() {
    SubscriptionOptions defaults;
    defaults.linger = absl::ZeroDuration();
    defaults.commit_interval = absl::Seconds(1);
    defaults.poll_timeout = absl::Hours(1);  // the loop turns when the test says
    registry_ = std::make_unique<SubscriptionRegistry>(
        defaults, /*max_subscriptions=*/10,
        [this](const std::string& group, int) {
          return absl::StatusOr<std::unique_ptr<broker::GroupConsumer>>(
              groups_[group].NewConsumer());
        },
        nullptr, nullptr, clock_, metrics_);
  }

  // A stream whose first request is `first`; it ends with the status the reactor finishes
  // with.
  grpc::Status EndOf(const ConsumeRequest& first) {
    FakeServerStream stream(new ConsumeReactor(*registry_, 100));
    stream.Deliver(first);
    std::optional<grpc::Status> status = stream.AwaitFinish();
    return status.value_or(grpc::Status(grpc::StatusCode::INTERNAL, "the stream did not end"));
  }

  std::map<std::string, FakeGroup> groups_;  // by group id; they outlive the registry
  SimulatedClock clock_;
  ConsumeMetrics metrics_;
  std::unique_ptr<SubscriptionRegistry> registry_;
};

TEST_F(ConsumeReactorTest, SubscribesWritesRecordsAndCommitsWhatIsAcked) {
  FakeServerStream stream(new ConsumeReactor(*registry_, 100));
  stream.Deliver(Subscribe("readers", {"orders"}));
  std::optional<ConsumeResponse> subscribed = stream.NextResponse<ConsumeResponse>();
  ASSERT_TRUE(subscribed.has_value());
  ASSERT_TRUE(subscribed->has_subscribed()) << subscribed->DebugString();
  EXPECT_FALSE(subscribed->subscribed().stream_id().empty());

  FakeGroup& group = groups_["readers"];
  group.Assign({kP0});
  Message record;
  record.tp = kP0;
  record.offset = 5;
  record.key = "k";
  record.value = "hello";
  group.Fetch({record});
  ASSERT_TRUE(group.Cycle());
  std::optional<ConsumeResponse> batch = stream.NextResponse<ConsumeResponse>();
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->records().records_size(), 1) << batch->DebugString();
  const auto& sent = batch->records().records(0);
  EXPECT_EQ(sent.offset(), 5);
  EXPECT_EQ(sent.value(), "hello");

  ASSERT_TRUE(stream.AwaitRead());
  stream.Deliver(Ack(sent.delivery_id()));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(group.Cycle());
  ASSERT_TRUE(group.Cycle());
  EXPECT_EQ(group.committed()[kP0], 6);

  stream.HalfClose();
  std::optional<grpc::Status> end = stream.AwaitFinish();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(end->ok()) << end->error_message();
}

TEST_F(ConsumeReactorTest, TheFirstRequestMustSubscribe) {
  grpc::Status status = EndOf(Ack(1));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("the first message must be a subscribe"));
}

TEST_F(ConsumeReactorTest, BadSubscriptionsAreRefusedNamingTheField) {
  struct Case {
    ConsumeRequest request;
    std::string field;
  };
  ConsumeRequest bad_policy = Subscribe("readers", {"orders"});
  bad_policy.mutable_subscribe()->mutable_dead_letter_policy()->set_topic("orders");
  for (const Case& c : std::vector<Case>{
           {Subscribe("", {"orders"}), "subscribe.group"},
           {Subscribe(std::string(32768, 'g'), {"orders"}), "subscribe.group"},
           {Subscribe("readers", {}), "subscribe.topics"},
           {Subscribe("readers", {"orders", ".."}), "subscribe.topics[1]"},
           {Subscribe("readers", {"bad\ntopic"}), "subscribe.topics[0]"},
           {bad_policy, "subscribe.dead_letter_policy.topic"},
       }) {
    grpc::Status status = EndOf(c.request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }
  EXPECT_EQ(registry_->open_subscriptions(), 0u);
}

TEST_F(ConsumeReactorTest, ASecondSubscribeAndGarbageBytesEndTheStream) {
  {
    FakeServerStream stream(new ConsumeReactor(*registry_, 100));
    stream.Deliver(Subscribe("readers", {"orders"}));
    ASSERT_TRUE(stream.NextResponse<ConsumeResponse>().has_value());
    ASSERT_TRUE(stream.AwaitRead());
    stream.Deliver(Subscribe("readers", {"orders"}));
    std::optional<grpc::Status> end = stream.AwaitFinish();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(end->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(end->error_message(), HasSubstr("only the first message may subscribe"));
  }
  FakeServerStream stream(new ConsumeReactor(*registry_, 100));
  stream.DeliverBytes("\x0a\xff\xff\xff\xff");
  std::optional<grpc::Status> end = stream.AwaitFinish();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(end->error_message(), HasSubstr("kafka_sidecar.v1.ConsumeRequest"));
}

TEST_F(ConsumeReactorTest, AStreamAskingForOtherPoliciesThanItsSubscriptionFailsPrecondition) {
  FakeServerStream first(new ConsumeReactor(*registry_, 100));
  first.Deliver(Subscribe("readers", {"orders"}));
  ASSERT_TRUE(first.NextResponse<ConsumeResponse>().has_value());

  ConsumeRequest other = Subscribe("readers", {"orders"});
  other.mutable_subscribe()->mutable_retry_policy()->set_min_backoff_ms(100);
  grpc::Status status = EndOf(other);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("subscribe.retry_policy"));
}

TEST_F(ConsumeReactorTest, AFailedWriteEndsTheStreamCancelledAndItsRecordsGoToAnother) {
  FakeServerStream leaving(new ConsumeReactor(*registry_, 100));
  leaving.Deliver(Subscribe("readers", {"orders"}));
  ASSERT_TRUE(leaving.NextResponse<ConsumeResponse>().has_value());
  FakeServerStream staying(new ConsumeReactor(*registry_, 100));
  staying.Deliver(Subscribe("readers", {"orders"}));
  ASSERT_TRUE(staying.NextResponse<ConsumeResponse>().has_value());

  FakeGroup& group = groups_["readers"];
  group.Assign({kP0});
  Message record;
  record.tp = kP0;
  record.offset = 0;
  record.value = "v";  // a null key: it goes by partition, to one of the two streams
  group.Fetch({record});
  ASSERT_TRUE(group.Cycle());
  FakeServerStream* holder = nullptr;
  for (int i = 0; i < 1000 && holder == nullptr; ++i) {
    if (leaving.writing<ConsumeResponse>().has_value()) holder = &leaving;
    if (staying.writing<ConsumeResponse>().has_value()) holder = &staying;
    if (holder == nullptr) {
      ASSERT_TRUE(group.Cycle());
    }
  }
  ASSERT_NE(holder, nullptr) << "the record reached no stream";
  FakeServerStream* other = holder == &leaving ? &staying : &leaving;

  holder->CompleteWrite(/*ok=*/false);
  std::optional<grpc::Status> end = holder->AwaitFinish();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::CANCELLED);
  holder->End();  // gRPC's OnDone: the reactor detaches, its record goes back

  std::optional<ConsumeResponse> again = other->AwaitWrite<ConsumeResponse>();
  ASSERT_TRUE(again.has_value());
  ASSERT_EQ(again->records().records_size(), 1);
  EXPECT_EQ(again->records().records(0).offset(), 0);
  other->CompleteWrite();
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
