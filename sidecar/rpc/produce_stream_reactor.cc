#include "sidecar/rpc/produce_stream_reactor.h"

#include <utility>

#include "sidecar/rpc/produce_request.h"

namespace kafka_sidecar::sidecar {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;

ProduceStreamReactor::ProduceStreamReactor(broker::Producer& producer, int max_pending,
                                           ProduceMetrics& metrics,
                                           ProduceStreamRegistry& registry, TraceContext trace)
    : ProduceReactor(producer, max_pending, metrics, registry, std::move(trace), "record") {
  Pump();
}

int ProduceStreamReactor::Accept(const ProduceRequest&) {
  ++in_kafka_;
  metrics_.pending_records++;
  return 1;
}

void ProduceStreamReactor::HandOver(const ProduceRequest& request, bool draining,
                                    bool send_now) {
  auto answer = [this, request_id = request.request_id(),
                 topic = request.topic()](const broker::DeliveryReport& report) {
    ProduceResponse response;
    response.set_request_id(request_id);
    response.set_topic(topic);
    FillProduceResponse(report, &response);
    Respond(std::move(response));
  };
  absl::Status valid = ValidateProduceRequest(request);
  if (!valid.ok()) {
    answer(broker::DeliveryReport{valid});
  } else if (draining) {
    answer(broker::DeliveryReport{
        absl::UnavailableError("the sidecar is shutting down; the record was not produced")});
  } else {
    HeaderViews headers;
    producer_.Produce(ToRecordView(request, headers, trace_), std::move(answer));
    if (send_now) producer_.SendNow();
  }
}

void ProduceStreamReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    metrics_.pending_records--;
    if (!ok) {
      // The app is gone; what Kafka still answers has nowhere to go.
      broken_ = true;
      metrics_.pending_records -= static_cast<int64_t>(responses_.size());
      responses_.clear();
    }
  }
  Pump();
}

void ProduceStreamReactor::Respond(ProduceResponse response) {
  {
    // The state change and the claim to pump happen under one lock: this runs on a producer
    // thread, outside gRPC's reactions, and once the lock is gone only the pumper may touch
    // the reactor (the pumper may finish it, and OnDone delete it).
    absl::MutexLock lock(&mu_);
    --in_kafka_;
    if (broken_) {
      metrics_.pending_records--;
    } else {
      responses_.push_back(std::move(response));
    }
    if (!ClaimPump()) return;
  }
  PumpClaimed();
}

const ProduceResponse* ProduceStreamReactor::TakeNextWrite(bool& more) {
  if (responses_.empty()) return nullptr;
  writing_ = std::move(responses_.front());
  responses_.pop_front();
  // More answers are ready: let gRPC coalesce this one with the next.
  more = !responses_.empty();
  return &writing_;
}

}  // namespace kafka_sidecar::sidecar
