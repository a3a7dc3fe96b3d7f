#include "sidecar/rpc/grpc_status.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

void ToProtoError(const absl::Status& status, kafka_sidecar::v1::Error* error) {
  error->set_code(static_cast<int32_t>(status.code()));
  error->set_message(std::string(status.message()));
}

grpc::Status ProduceStreamEnd(bool client_gone, const absl::Status& unparsed, bool cut_short,
                              absl::string_view unit) {
  if (client_gone) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
  if (!unparsed.ok()) return ToGrpcStatus(unparsed);
  if (cut_short) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("the sidecar is shutting down; every accepted ", unit,
                                     " was answered"));
  }
  return grpc::Status::OK;
}

}  // namespace kafka_sidecar::sidecar
