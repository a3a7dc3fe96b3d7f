// API.md: an error reaches an app as a gRPC status, or as `Error{code, message}` where `code`
// is "a grpc::StatusCode value". Apps in other languages compare the numbers gRPC publishes
// (https://grpc.github.io/grpc/core/md_doc_statuscodes.html), so those are what is checked.

#include "sidecar/rpc/grpc_status.h"

#include <gtest/gtest.h>

namespace kafka_sidecar::sidecar {
namespace {

struct Case {
  absl::Status status;
  int wire_code;  // gRPC's published number for the code API.md names
};

const Case kCases[] = {
    {absl::InvalidArgumentError("topic: must not be empty"), 3},
    {absl::DeadlineExceededError("stream inactive"), 4},
    {absl::NotFoundError("topic 'x' does not exist"), 5},
    {absl::PermissionDeniedError("denied"), 7},
    {absl::ResourceExhaustedError("queue full"), 8},
    {absl::FailedPreconditionError("--assignment_strategy"), 9},
    {absl::UnavailableError("kafka down"), 14},
    {absl::UnauthenticatedError("SASL failed"), 16},
};

TEST(GrpcStatusTest, KeepsCodeAndMessage) {
  for (const Case& c : kCases) {
    grpc::Status grpc_status = ToGrpcStatus(c.status);
    EXPECT_EQ(static_cast<int>(grpc_status.error_code()), c.wire_code) << c.status;
    EXPECT_EQ(grpc_status.error_message(), c.status.message());
  }
}

TEST(GrpcStatusTest, OkIsOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

TEST(GrpcStatusTest, FillsProtoErrorWithTheWireCode) {
  for (const Case& c : kCases) {
    kafka_sidecar::v1::Error error;
    ToProtoError(c.status, &error);
    EXPECT_EQ(error.code(), c.wire_code) << c.status;
    EXPECT_EQ(error.message(), c.status.message());
  }
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
