// What API.md's status table promises for each situation that reaches the sidecar as a
// librdkafka error; not a copy of the mapping's switch.

#include "broker/rdkafka_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kafka_sidecar::broker {
namespace {

using ::testing::HasSubstr;

TEST(RdKafkaStatusTest, NoErrorIsOk) {
  EXPECT_TRUE(RdKafkaStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "anything").ok());
}

// "topic does not exist and the cluster does not create it: NOT_FOUND naming the topic". The
// client learns it locally (producing) or from the broker (metadata, fetch).
TEST(RdKafkaStatusTest, AMissingTopicIsNotFoundNamingIt) {
  for (rd_kafka_resp_err_t err :
       {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART}) {
    absl::Status status = RdKafkaStatus(err, "topic 'orders'");
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << rd_kafka_err2name(err);
    EXPECT_THAT(status.message(), HasSubstr("topic 'orders'"));
  }
}

// "Kafka unreachable past the retry deadline: UNAVAILABLE": a record that timed out, every
// broker down, a broken connection.
TEST(RdKafkaStatusTest, KafkaUnreachableIsUnavailable) {
  for (rd_kafka_resp_err_t err : {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
                                  RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
                                  RD_KAFKA_RESP_ERR__TRANSPORT}) {
    EXPECT_EQ(RdKafkaStatus(err, "").code(), absl::StatusCode::kUnavailable)
        << rd_kafka_err2name(err);
  }
}

// "sidecar shutting down: UNAVAILABLE": records still queued at the end are purged.
TEST(RdKafkaStatusTest, RecordsPurgedAtShutdownAreUnavailable) {
  for (rd_kafka_resp_err_t err :
       {RD_KAFKA_RESP_ERR__PURGE_QUEUE, RD_KAFKA_RESP_ERR__PURGE_INFLIGHT}) {
    EXPECT_EQ(RdKafkaStatus(err, "").code(), absl::StatusCode::kUnavailable)
        << rd_kafka_err2name(err);
  }
}

// "a record larger than the configured message.max.bytes: INVALID_ARGUMENT for that record",
// whether librdkafka refuses it or the broker does.
TEST(RdKafkaStatusTest, ARecordOverTheSizeLimitIsInvalidArgument) {
  for (rd_kafka_resp_err_t err :
       {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE}) {
    EXPECT_EQ(RdKafkaStatus(err, "").code(), absl::StatusCode::kInvalidArgument)
        << rd_kafka_err2name(err);
  }
}

// "the group's other members use an assignment strategy this sidecar does not offer (Kafka's
// INCONSISTENT_GROUP_PROTOCOL): stream ends with FAILED_PRECONDITION". Kafka refuses the
// JoinGroup for as long as the group's configuration stays: not a transient error.
TEST(RdKafkaStatusTest, AGroupOfAnotherAssignmentStrategyIsFailedPrecondition) {
  absl::Status status =
      RdKafkaStatus(RD_KAFKA_RESP_ERR_INCONSISTENT_GROUP_PROTOCOL, "group 'orders'");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("group 'orders'"));
  EXPECT_THAT(status.message(), HasSubstr("INCONSISTENT_GROUP_PROTOCOL"));
}

// Every error librdkafka knows is answered as an error, and its message says which it was:
// no Kafka failure is ever reported to an app as success.
TEST(RdKafkaStatusTest, EveryKafkaErrorIsAnErrorThatNamesIt) {
  const struct rd_kafka_err_desc* descs;
  size_t count;
  rd_kafka_get_err_descs(&descs, &count);
  size_t checked = 0;
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = descs[i].code;
    if (descs[i].name == nullptr || err == RD_KAFKA_RESP_ERR_NO_ERROR ||
        err == RD_KAFKA_RESP_ERR__BEGIN || err == RD_KAFKA_RESP_ERR__END) {
      continue;  // not an error, or the bounds of librdkafka's own range
    }
    absl::Status status = RdKafkaStatus(descs[i].code, "ctx");
    EXPECT_FALSE(status.ok()) << descs[i].name;
    EXPECT_THAT(status.message(), HasSubstr(descs[i].name));
    ++checked;
  }
  EXPECT_GT(checked, 100u);
}

}  // namespace
}  // namespace kafka_sidecar::broker
