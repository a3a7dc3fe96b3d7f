#include "sidecar/rpc/produce_stream_reactor.h"

#include <utility>

#include "sidecar/rpc/grpc_status.h"
#include "sidecar/rpc/produce_request.h"

namespace kafka_sidecar::sidecar {

using kafka_sidecar::v1::ProduceResponse;

ProduceStreamReactor::ProduceStreamReactor(broker::Producer& producer, int max_pending,
                                           ProduceMetrics& metrics,
                                           ProduceStreamRegistry& registry)
    : producer_(producer),
      max_pending_(max_pending),
      metrics_(metrics),
      registry_(registry),
      send_now_policy_(max_pending) {
  const bool draining = registry_.Add(this);
  {
    absl::MutexLock lock(&mu_);
    draining_ = draining;
  }
  Pump();
}

void ProduceStreamReactor::Drain() {
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  Pump();
}

void ProduceStreamReactor::OnRead(const kafka_sidecar::v1::ProduceRequest* request,
                                  const absl::Status& end) {
  bool accepted = false;
  bool draining = false;
  bool send_now = false;
  {
    absl::MutexLock lock(&mu_);
    if (request == nullptr) {
      reads_done_ = true;
      unparsed_ = end;
    } else if (!finished_) {
      // Counted before the producer sees it, so the stream cannot finish under it.
      ++in_kafka_;
      metrics_.pending_records++;
      accepted = true;
      draining = draining_;
      send_now = send_now_policy_.Accepted(1, pending());
    }
    if (!accepted) read_in_flight_ = false;
  }
  if (!accepted) {
    Pump();
    return;
  }

  const uint64_t request_id = request->request_id();
  auto answer = [this, request_id, topic = request->topic()](const broker::DeliveryReport& report) {
    ProduceResponse response;
    response.set_request_id(request_id);
    response.set_topic(topic);
    FillProduceResponse(report, &response);
    Respond(std::move(response));
  };
  absl::Status valid = ValidateProduceRequest(*request);
  if (!valid.ok()) {
    answer(broker::DeliveryReport{valid});
  } else if (draining) {
    answer(broker::DeliveryReport{
        absl::UnavailableError("the sidecar is shutting down; the record was not produced")});
  } else {
    HeaderViews headers;
    producer_.Produce(ToRecordView(*request, headers), std::move(answer));
    if (send_now) producer_.SendNow();
  }
  {
    // Only now may the request be read into again.
    absl::MutexLock lock(&mu_);
    read_in_flight_ = false;
  }
  Pump();
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

void ProduceStreamReactor::OnDone() {
  registry_.Remove(this);
  delete this;
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

ProduceStreamReactor::Actions ProduceStreamReactor::NextActions() {
  Actions actions;
  if (finished_) return actions;
  if (!write_in_flight_ && !broken_ && !responses_.empty()) {
    writing_ = std::move(responses_.front());
    responses_.pop_front();
    write_in_flight_ = true;
    actions.write = &writing_;
    // More answers are ready: let gRPC coalesce this one with the next.
    actions.write_buffer_hint = !responses_.empty();
  }
  if (!read_in_flight_ && !reads_done_ && !draining_ && pending() < max_pending_) {
    read_in_flight_ = true;
    actions.read = true;
  }
  if (pending() == 0 && (reads_done_ || draining_ || broken_)) {
    finished_ = true;
    actions.finish = true;
    actions.finish_status =
        ProduceStreamEnd(broken_, unparsed_, draining_ && !reads_done_, "record");
  }
  return actions;
}

}  // namespace kafka_sidecar::sidecar
