#ifndef KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_BATCH_REACTOR_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_BATCH_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/common/metrics.h"
#include "sidecar/rpc/produce_request.h"
#include "sidecar/rpc/produce_stream_registry.h"
#include "sidecar/rpc/stream_reactor.h"

namespace kafka_sidecar::sidecar {

// One ProduceBatchStream call. Reads a ProduceBatch, hands its records to the producer in one
// Producer::ProduceBatch, and writes the batch's ProduceBatchResult (one response per record,
// in the batch's order) once every record of it has its answer; results of different batches
// go out in the order they complete. A record the sidecar refuses itself (a bad topic name, a
// negative partition; every record read once draining) gets its error in the result without
// reaching the producer; the batch and the stream go on.
//
// Backpressure counts records: the records of accepted batches whose results are not yet
// written. The next batch is read only while fewer than `max_pending` are, so a batch is never
// split, and one larger than `max_pending` is still taken when fewer are pending (it cannot
// deadlock the stream): at most max_pending - 1 plus one batch are ever pending. A full window
// may ask the producer to send at once (SendNowPolicy).
//
// Per batch the reactor allocates one object (the result, on its own arena, and a countdown of
// the records still waiting for Kafka), never one per record.
//
// A batch whose bytes do not parse ends the stream with INVALID_ARGUMENT, once every batch
// accepted before it is answered.
//
// Threads: as ProduceStreamReactor. Reactions run on gRPC's threads, delivery reports on the
// producer's (or inline); gRPC operations are issued by StreamReactor's pump. The reactor
// deletes itself in OnDone, which gRPC calls only after Finish; Finish is called only once
// every accepted batch was answered, so no report outlives it.
class ProduceBatchReactor final
    : public StreamReactor<kafka_sidecar::v1::ProduceBatch, kafka_sidecar::v1::ProduceBatchResult>,
      public DrainableStream {
 public:
  // `metrics.pending_records` counts this stream's pending records too.
  ProduceBatchReactor(broker::Producer& producer, int max_pending, ProduceMetrics& metrics,
                      ProduceStreamRegistry& registry);
  ~ProduceBatchReactor() override;

  // Stops reading; ends the stream with UNAVAILABLE once every accepted batch is answered.
  void Drain() override;

 private:
  // One accepted batch: its result, filled in as Kafka answers. Defined in the .cc.
  class Batch;

  void OnRead(const kafka_sidecar::v1::ProduceBatch* request, const absl::Status& end) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;
  Actions NextActions() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Every record of `batch` has its answer: queue its result (the reactor takes it over).
  void Complete(Batch* batch);
  // Changes pending_records_, and the gauge with it.
  void AddPending(int records) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    pending_records_ += records;
    metrics_.pending_records += records;
  }

  broker::Producer& producer_;
  const int max_pending_;
  ProduceMetrics& metrics_;
  ProduceStreamRegistry& registry_;

  // Used only in OnRead (reused from batch to batch).
  std::vector<broker::RecordView> views_;
  std::vector<broker::HeaderView> header_views_;

  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;  // until OnReadDone has handed it on
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;      // the app half-closed, or the call broke
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed: the app is gone
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status unparsed_ ABSL_GUARDED_BY(mu_);  // a batch's bytes did not parse
  // Records of accepted batches whose results are not yet written: what max_pending bounds.
  int pending_records_ ABSL_GUARDED_BY(mu_) = 0;
  SendNowPolicy send_now_policy_ ABSL_GUARDED_BY(mu_);
  // Accepted batches with a record still waiting for its answer (owned by nobody but the
  // countdown: Complete takes them over).
  int open_batches_ ABSL_GUARDED_BY(mu_) = 0;
  // Answered batches, waiting to be written.
  std::deque<std::unique_ptr<Batch>> ready_ ABSL_GUARDED_BY(mu_);
  // The batch whose result gRPC is writing.
  std::unique_ptr<Batch> writing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_BATCH_REACTOR_H_
