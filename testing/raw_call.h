#ifndef KAFKA_SIDECAR_TESTING_RAW_CALL_H_
#define KAFKA_SIDECAR_TESTING_RAW_CALL_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

// Calls that send whatever bytes a test says, as a broken or hostile client would: no
// generated stub, no serialization.

namespace kafka_sidecar::testing {

struct RawCallResult {
  grpc::Status status;
  int responses = 0;  // messages the server sent back
};

// Calls the unary `method` (for example "/kafka_sidecar.v1.KafkaSidecar/Produce") at `target`
// with `request` as the message's bytes, within `timeout`.
RawCallResult RawUnaryCall(const std::string& target, const std::string& method,
                           const std::string& request, absl::Duration timeout);

// Opens the streaming `method` at `target`, writes each of `requests` as one message's bytes
// and, without half-closing, reads until the server ends the call or `timeout` passes
// (DEADLINE_EXCEEDED).
RawCallResult RawStreamCall(const std::string& target, const std::string& method,
                            const std::vector<std::string>& requests, absl::Duration timeout);

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_RAW_CALL_H_
