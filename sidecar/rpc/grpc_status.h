#ifndef KAFKA_SIDECAR_SIDECAR_RPC_GRPC_STATUS_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/kafka_sidecar.pb.h"

namespace kafka_sidecar::sidecar {

// The one place where absl::Status becomes what gRPC clients see. The canonical codes are the
// same numbers in both, so the code carries over unchanged.
grpc::Status ToGrpcStatus(const absl::Status& status);

// How a produce stream ends once every accepted `unit` ("record", "batch") is answered:
// CANCELLED when the client went away, the error of a request that did not parse, UNAVAILABLE
// when shutdown cut the stream short, else OK.
grpc::Status ProduceStreamEnd(bool client_gone, const absl::Status& unparsed, bool cut_short,
                              absl::string_view unit);

// Fills the API's per-record Error from a non-OK status.
void ToProtoError(const absl::Status& status, kafka_sidecar::v1::Error* error);

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_GRPC_STATUS_H_
