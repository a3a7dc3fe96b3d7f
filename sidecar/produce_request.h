#ifndef KAFKA_SIDECAR_SIDECAR_PRODUCE_REQUEST_H_
#define KAFKA_SIDECAR_SIDECAR_PRODUCE_REQUEST_H_

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.pb.h"

namespace kafka_sidecar::sidecar {

// INVALID_ARGUMENT, naming the field, for a request Kafka could never take: an empty or
// malformed topic name, a negative partition. (Size limits and missing partitions are Kafka's
// to judge: the producer reports them.)
absl::Status ValidateProduceRequest(const kafka_sidecar::v1::ProduceRequest& request);

// Header views of `request`, for RecordView::headers.
using HeaderViews = absl::InlinedVector<broker::HeaderView, 4>;

// A view of `request` for the producer. Borrows from `request` and `headers`.
broker::RecordView ToRecordView(const kafka_sidecar::v1::ProduceRequest& request,
                                HeaderViews& headers);

// The response for `request_id` from Kafka's report (or from a status, for records that never
// reached Kafka).
void FillProduceResponse(const broker::DeliveryReport& report,
                         kafka_sidecar::v1::ProduceResponse* response);

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_PRODUCE_REQUEST_H_
