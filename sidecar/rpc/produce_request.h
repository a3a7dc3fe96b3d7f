#ifndef KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_REQUEST_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_REQUEST_H_

#include <cstddef>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.pb.h"

namespace kafka_sidecar::sidecar {

// INVALID_ARGUMENT, naming the field, for a request Kafka could never take: an empty or
// malformed topic name, a negative partition. (Size limits and missing partitions are Kafka's
// to judge: the producer reports them.)
absl::Status ValidateProduceRequest(const kafka_sidecar::v1::ProduceRequest& request);

// The W3C trace context of a produce call: its gRPC metadata `traceparent` and `tracestate`
// (what OpenTelemetry's gRPC instrumentation sends). The sidecar adds them to each record of
// the call as Kafka headers of the same names, unless the record carries a `traceparent`
// header of its own, so that whoever consumes the record continues the producer's trace.
struct TraceContext {
  std::string traceparent;  // empty: the call carried none, or one that is not W3C's format
  std::string tracestate;   // only with a traceparent

  // From the metadata values (empty when absent). A traceparent that is not
  // version-traceid-parentid-flags in lowercase hex (W3C Trace Context) is dropped, and the
  // tracestate with it, as the specification asks.
  static TraceContext FromMetadata(absl::string_view traceparent, absl::string_view tracestate);
  // Header views the context adds to a record (0, 1 or 2).
  size_t header_count() const { return traceparent.empty() ? 0 : (tracestate.empty() ? 1 : 2); }
};

// True when `request` has a header named `traceparent` (in any case).
bool HasTraceparent(const kafka_sidecar::v1::ProduceRequest& request);

// Header views of `request`, for RecordView::headers.
using HeaderViews = absl::InlinedVector<broker::HeaderView, 4>;

// A view of `request` for the producer, with `trace`'s headers unless the record has its own
// traceparent. Its header views are appended to `headers` (a HeaderViews, or a vector holding a
// whole batch's), which must have room for them (the request's headers plus
// trace.header_count()): the view borrows from `request`, `trace` and `headers`.
template <typename Headers>
broker::RecordView ToRecordView(const kafka_sidecar::v1::ProduceRequest& request,
                                Headers& headers, const TraceContext& trace) {
  const size_t first = headers.size();
  for (const kafka_sidecar::v1::Header& header : request.headers()) {
    headers.push_back({header.key(), header.value()});
  }
  if (!trace.traceparent.empty() && !HasTraceparent(request)) {
    headers.push_back({"traceparent", trace.traceparent});
    if (!trace.tracestate.empty()) headers.push_back({"tracestate", trace.tracestate});
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
