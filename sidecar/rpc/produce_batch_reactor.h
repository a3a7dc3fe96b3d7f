#ifndef KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_BATCH_REACTOR_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_BATCH_REACTOR_H_

#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/common/metrics.h"
#include "sidecar/rpc/produce_reactor.h"
#include "sidecar/rpc/produce_stream_registry.h"

namespace kafka_sidecar::sidecar {

// One ProduceBatchStream call. Reads a ProduceBatch, hands its records to the producer in one
// Producer::ProduceBatch, and writes the batch's ProduceBatchResult (one response per record,
// in the batch's order) once every record of it has its answer; results of different batches
// go out in the order they complete. A record the sidecar refuses itself (a bad topic name, a
// negative partition; every record read once draining) gets its error in the result without
// reaching the producer; the batch and the stream go on.
//
// Backpressure counts records: the records of accepted batches whose results are not yet
// written (ProduceReactor's window; a batch larger than the window is still taken when fewer
// are pending, so it cannot deadlock the stream).
//
// Per batch the reactor allocates one object (the result, on its own arena, and a countdown of
// the records still waiting for Kafka), never one per record.
//
// Threads: as ProduceStreamReactor. Reactions run on gRPC's threads, delivery reports on the
// producer's (or inline); gRPC operations are issued by StreamReactor's pump.
class ProduceBatchReactor final
    : public ProduceReactor<kafka_sidecar::v1::ProduceBatch, kafka_sidecar::v1::ProduceBatchResult> {
 public:
  ProduceBatchReactor(broker::Producer& producer, int max_pending, ProduceMetrics& metrics,
                      ProduceStreamRegistry& registry, TraceContext trace = {});
  ~ProduceBatchReactor() override;

 private:
  // One accepted batch: its result, filled in as Kafka answers. Defined in the .cc.
  class Batch;

  int Accept(const kafka_sidecar::v1::ProduceBatch& request) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandOver(const kafka_sidecar::v1::ProduceBatch& request, bool draining,
                bool send_now) override;
  int pending() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_records_; }
  bool settled() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return open_batches_ == 0 && ready_.empty();
  }
  const kafka_sidecar::v1::ProduceBatchResult* TakeNextWrite(bool& more) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnWriteDone(bool ok) override;

  // Every record of `batch` has its answer: queue its result (the reactor takes it over).
  void Complete(Batch* batch);
  // Changes pending_records_, and the gauge with it.
  void AddPending(int records) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    pending_records_ += records;
    metrics_.pending_records += records;
  }

  // Used only in HandOver (reused from batch to batch).
  std::vector<broker::RecordView> views_;
  std::vector<broker::HeaderView> header_views_;

  // Records of accepted batches whose results are not yet written: what max_pending bounds.
  int pending_records_ ABSL_GUARDED_BY(mu_) = 0;
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
