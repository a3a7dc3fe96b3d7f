#ifndef KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REACTOR_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/common/metrics.h"
#include "sidecar/rpc/produce_request.h"
#include "sidecar/rpc/produce_stream_registry.h"
#include "sidecar/rpc/stream_reactor.h"

namespace kafka_sidecar::sidecar {

// One ProduceStream call. Reads a request, hands it to the producer, and writes one response
// per request as Kafka answers (so responses may come out of request order across
// partitions). At most `max_pending` records are accepted and not yet answered: at that point
// it stops reading, so gRPC flow control pushes back on the app; a full window may ask the
// producer to send at once (SendNowPolicy).
//
// Requests whose bytes do not parse end the stream with INVALID_ARGUMENT, once every record
// accepted before them is answered.
//
// Threads: reactions run on gRPC's threads, delivery callbacks on the producer's; gRPC
// operations are issued by StreamReactor's pump. The reactor deletes itself in OnDone, which
// gRPC calls only after Finish; Finish is called only once every accepted record was answered,
// so no delivery callback can outlive it.
class ProduceStreamReactor final
    : public StreamReactor<kafka_sidecar::v1::ProduceRequest, kafka_sidecar::v1::ProduceResponse>,
      public DrainableStream {
 public:
  // `metrics.pending_records` counts this stream's pending records too.
  ProduceStreamReactor(broker::Producer& producer, int max_pending, ProduceMetrics& metrics,
                       ProduceStreamRegistry& registry);

  // Stops reading; ends the stream with UNAVAILABLE once every accepted record is answered.
  void Drain() override;

 private:
  void OnRead(const kafka_sidecar::v1::ProduceRequest* request, const absl::Status& end) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;
  Actions NextActions() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Queues the answer to one accepted record.
  void Respond(kafka_sidecar::v1::ProduceResponse response);
  int pending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_kafka_ + static_cast<int>(responses_.size()) + (write_in_flight_ ? 1 : 0);
  }

  broker::Producer& producer_;
  const int max_pending_;
  ProduceMetrics& metrics_;
  ProduceStreamRegistry& registry_;

  // The response gRPC is writing; set by NextActions, read by the pump.
  kafka_sidecar::v1::ProduceResponse writing_;

  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;  // until OnReadDone has handed it on
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;      // the app half-closed, or the call broke
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed: the app is gone
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status unparsed_ ABSL_GUARDED_BY(mu_);  // a request's bytes did not parse
  SendNowPolicy send_now_policy_ ABSL_GUARDED_BY(mu_);
  int in_kafka_ ABSL_GUARDED_BY(mu_) = 0;  // accepted, waiting for the producer's answer
  std::deque<kafka_sidecar::v1::ProduceResponse> responses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REACTOR_H_
