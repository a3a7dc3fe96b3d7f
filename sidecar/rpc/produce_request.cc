#include "sidecar/rpc/produce_request.h"

#include <string>

#include "absl/strings/match.h"
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

namespace {

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !s.empty();
}

// version "-" trace-id "-" parent-id "-" flags: 2, 32, 16 and 2 lowercase hex digits; the ids
// not all zero, the version not ff. A later version may append "-" and more.
bool IsTraceparent(absl::string_view v) {
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  const absl::string_view version = v.substr(0, 2);
  const absl::string_view trace_id = v.substr(3, 32);
  const absl::string_view parent_id = v.substr(36, 16);
  if (!IsLowerHex(version) || version == "ff" || !IsLowerHex(trace_id) ||
      !IsLowerHex(parent_id) || !IsLowerHex(v.substr(53, 2))) {
    return false;
  }
  const auto all_zero = [](absl::string_view id) { return id.find_first_not_of('0') == id.npos; };
  if (all_zero(trace_id) || all_zero(parent_id)) return false;
  if (version == "00") return v.size() == 55;
  return v.size() == 55 || v[55] == '-';
}

}  // namespace

TraceContext TraceContext::FromMetadata(absl::string_view traceparent,
                                        absl::string_view tracestate) {
  TraceContext trace;
  if (!IsTraceparent(traceparent)) return trace;
  trace.traceparent = std::string(traceparent);
  trace.tracestate = std::string(tracestate);
  return trace;
}

bool HasTraceparent(const kafka_sidecar::v1::ProduceRequest& request) {
  for (const kafka_sidecar::v1::Header& header : request.headers()) {
    if (absl::EqualsIgnoreCase(header.key(), "traceparent")) return true;
  }
  return false;
}

void FillProduceResponse(const broker::DeliveryReport& report,
                         kafka_sidecar::v1::ProduceResponse* response) {
  response->set_partition(report.partition);
  response->set_offset(report.offset);
  if (!report.status.ok()) ToProtoError(report.status, response->mutable_error());
}

}  // namespace kafka_sidecar::sidecar
