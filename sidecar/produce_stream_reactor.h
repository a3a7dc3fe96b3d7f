#ifndef KAFKA_SIDECAR_SIDECAR_PRODUCE_STREAM_REACTOR_H_
#define KAFKA_SIDECAR_SIDECAR_PRODUCE_STREAM_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/metrics.h"
#include "sidecar/produce_request.h"
#include "sidecar/produce_stream_registry.h"

namespace kafka_sidecar::sidecar {

// One ProduceStream call. Reads a request, hands it to the producer, and writes one response
// per request as Kafka answers (so responses may come out of request order across
// partitions). At most `max_pending` records are accepted and not yet answered: at that point
// it stops reading, so gRPC flow control pushes back on the app; a full window may ask the
// producer to send at once (SendNowPolicy).
//
// Threads: reactions run on gRPC's threads, delivery callbacks on the producer's. Every gRPC
// operation is issued by Pump(), which one thread at a time runs (outside mu_, since gRPC may
// run a reaction inline), so the decision to read, write or finish and the call that does it
// can never interleave with another thread's. The reactor deletes itself in OnDone, which gRPC
// calls only after Finish; Finish is called only once every accepted record was answered, so no
// delivery callback can outlive it.
class ProduceStreamReactor final
    : public grpc::ServerBidiReactor<kafka_sidecar::v1::ProduceRequest,
                                     kafka_sidecar::v1::ProduceResponse>,
      public DrainableStream {
 public:
  // `metrics.pending_records` counts this stream's pending records too.
  ProduceStreamReactor(broker::Producer& producer, int max_pending, ProduceMetrics& metrics,
                       ProduceStreamRegistry& registry);

  // Stops reading; ends the stream with UNAVAILABLE once every accepted record is answered.
  void Drain() override;

 private:
  // The gRPC operations that the current state calls for.
  struct Actions {
    bool read = false;
    bool write = false;
    bool write_buffer_hint = false;
    bool finish = false;
    grpc::Status finish_status;
  };

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

  // Queues the answer to one accepted record.
  void Respond(kafka_sidecar::v1::ProduceResponse response);
  // Issues the operations the state calls for, until there are none.
  void Pump();
  // The same, for a caller that already set pumping_.
  void PumpClaimed();
  Actions NextActions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int pending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_kafka_ + static_cast<int>(responses_.size()) + (write_in_flight_ ? 1 : 0);
  }

  broker::Producer& producer_;
  const int max_pending_;
  ProduceMetrics& metrics_;
  ProduceStreamRegistry& registry_;

  // Written by gRPC between StartRead and OnReadDone; read only in OnReadDone.
  kafka_sidecar::v1::ProduceRequest request_;
  // The response gRPC is writing; touched only by Pump (set) and gRPC (read).
  kafka_sidecar::v1::ProduceResponse writing_;

  absl::Mutex mu_;
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;  // until OnReadDone has handed it on
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;      // the app half-closed, or the call broke
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed: the app is gone
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  SendNowPolicy send_now_policy_ ABSL_GUARDED_BY(mu_);
  int in_kafka_ ABSL_GUARDED_BY(mu_) = 0;  // accepted, waiting for the producer's answer
  std::deque<kafka_sidecar::v1::ProduceResponse> responses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_PRODUCE_STREAM_REACTOR_H_
