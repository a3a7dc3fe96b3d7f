#ifndef KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_REQUEST_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_REQUEST_H_

#include <cstddef>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.pb.h"

namespace kafka_sidecar::sidecar {

// INVALID_ARGUMENT, naming the field, for a request Kafka could never take: an empty or
// malformed topic name, a negative partition. (Size limits and missing partitions are Kafka's
// to judge: the producer reports them.)
absl::Status ValidateProduceRequest(const kafka_sidecar::v1::ProduceRequest& request);

// Header views of `request`, for RecordView::headers.
using HeaderViews = absl::InlinedVector<broker::HeaderView, 4>;

// A view of `request` for the producer. Its header views are appended to `headers` (a
// HeaderViews, or a vector holding a whole batch's), which must have room for them: the view
// borrows from `request` and `headers`.
template <typename Headers>
broker::RecordView ToRecordView(const kafka_sidecar::v1::ProduceRequest& request,
                                Headers& headers) {
  const size_t first = headers.size();
  for (const kafka_sidecar::v1::Header& header : request.headers()) {
    headers.push_back({header.key(), header.value()});
  }
  broker::RecordView view;
  view.topic = request.topic();
  if (request.has_key()) view.key = request.key();
  view.value = request.value();
  view.headers = absl::MakeConstSpan(headers.data() + first, headers.size() - first);
  if (request.has_partition()) view.partition = request.partition();
  return view;
}

// The response for `request_id` from Kafka's report (or from a status, for records that never
// reached Kafka).
void FillProduceResponse(const broker::DeliveryReport& report,
                         kafka_sidecar::v1::ProduceResponse* response);

// When a produce stream should ask the producer to send at once (Producer::SendNow). A stream
// whose window of pending records is full reads nothing more until answers come, so its records
// lingering in librdkafka for more (linger.ms) only stall it; but sending each time the window
// fills would send every few records a request of their own once answers trickle back. So it
// asks when the window is full and at least half of it was accepted since it last asked: the
// requests stay large, and a stream bound by its window is bound by Kafka's round trip rather
// than by linger.ms. Not thread-safe: its stream's lock guards it.
class SendNowPolicy {
 public:
  explicit SendNowPolicy(int window) : window_(window) {}

  // `records` more were accepted and `pending` are now waiting; true when the stream should
  // call Producer::SendNow once it has handed them over.
  bool Accepted(int records, int pending) {
    unasked_ += records;
    if (pending < window_ || 2 * unasked_ < window_) return false;
    unasked_ = 0;
    return true;
  }

 private:
  const int window_;
  int unasked_ = 0;  // records accepted since the last time Accepted said yes
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_REQUEST_H_
