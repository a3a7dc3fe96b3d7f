#include "broker/rdkafka_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kafka_sidecar::broker {
namespace {

using ::testing::HasSubstr;

TEST(RdKafkaStatusTest, NoErrorIsOk) {
  EXPECT_TRUE(RdKafkaStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "anything").ok());
}

TEST(RdKafkaStatusTest, MapsEachFamilyToItsCanonicalCode) {
  struct Case {
    rd_kafka_resp_err_t err;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, absl::StatusCode::kNotFound},
      {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, absl::StatusCode::kNotFound},
      {RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, absl::StatusCode::kNotFound},
      {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, absl::StatusCode::kInvalidArgument},
      {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, absl::StatusCode::kPermissionDenied},
      {RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, absl::StatusCode::kPermissionDenied},
      {RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, absl::StatusCode::kUnauthenticated},
      {RD_KAFKA_RESP_ERR__QUEUE_FULL, absl::StatusCode::kResourceExhausted},
      {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR__TRANSPORT, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR__PURGE_QUEUE, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR__FATAL, absl::StatusCode::kInternal},
      {RD_KAFKA_RESP_ERR_INVALID_TXN_STATE, absl::StatusCode::kUnknown},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RdKafkaStatusCode(c.err), c.code) << rd_kafka_err2name(c.err);
    EXPECT_EQ(RdKafkaStatus(c.err, "ctx").code(), c.code) << rd_kafka_err2name(c.err);
  }
}

TEST(RdKafkaStatusTest, MessageNamesContextAndKafkaError) {
  absl::Status status = RdKafkaStatus(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "topic 'orders'");
  EXPECT_THAT(status.message(), HasSubstr("topic 'orders'"));
  EXPECT_THAT(status.message(), HasSubstr("_MSG_TIMED_OUT"));
}

}  // namespace
}  // namespace kafka_sidecar::broker
