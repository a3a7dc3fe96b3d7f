#include "sidecar/rpc/produce_request.h"

#include "absl/strings/str_cat.h"
#include "sidecar/common/kafka_names.h"
#include "sidecar/rpc/grpc_status.h"

namespace kafka_sidecar::sidecar {

absl::Status ValidateProduceRequest(const kafka_sidecar::v1::ProduceRequest& request) {
  if (absl::Status valid = ValidateTopicName(request.topic(), "topic"); !valid.ok()) {
    return valid;
  }
  if (request.has_partition() && request.partition() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition: must be 0 or more, got ", request.partition()));
  }
  return absl::OkStatus();
}

void FillProduceResponse(const broker::DeliveryReport& report,
                         kafka_sidecar::v1::ProduceResponse* response) {
  response->set_partition(report.partition);
  response->set_offset(report.offset);
  if (!report.status.ok()) ToProtoError(report.status, response->mutable_error());
}

}  // namespace kafka_sidecar::sidecar
