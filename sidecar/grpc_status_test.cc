#include "sidecar/grpc_status.h"

#include <gtest/gtest.h>

namespace kafka_sidecar::sidecar {
namespace {

TEST(GrpcStatusTest, KeepsCodeAndMessage) {
  const absl::Status cases[] = {
      absl::InvalidArgumentError("topic: must not be empty"),
      absl::NotFoundError("topic 'x' does not exist"),
      absl::UnavailableError("kafka down"),
      absl::ResourceExhaustedError("queue full"),
      absl::PermissionDeniedError("denied"),
  };
  for (const absl::Status& status : cases) {
    grpc::Status grpc_status = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(grpc_status.error_code()), static_cast<int>(status.code()));
    EXPECT_EQ(grpc_status.error_message(), status.message());
  }
  EXPECT_EQ(static_cast<int>(grpc::StatusCode::NOT_FOUND),
            static_cast<int>(absl::StatusCode::kNotFound));
}

TEST(GrpcStatusTest, OkIsOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

TEST(GrpcStatusTest, FillsProtoError) {
  kafka_sidecar::v1::Error error;
  ToProtoError(absl::UnavailableError("brokers down"), &error);
  EXPECT_EQ(error.code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(error.message(), "brokers down");
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
