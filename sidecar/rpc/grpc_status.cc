#include "sidecar/rpc/grpc_status.h"

#include <string>

namespace kafka_sidecar::sidecar {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

void ToProtoError(const absl::Status& status, kafka_sidecar::v1::Error* error) {
  error->set_code(static_cast<int32_t>(status.code()));
  error->set_message(std::string(status.message()));
}

}  // namespace kafka_sidecar::sidecar
