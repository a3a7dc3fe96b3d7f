#ifndef KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REACTOR_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REACTOR_H_

#include <deque>

#include "absl/base/thread_annotations.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/common/metrics.h"
#include "sidecar/rpc/produce_reactor.h"
#include "sidecar/rpc/produce_stream_registry.h"

namespace kafka_sidecar::sidecar {

// One ProduceStream call: each request is one record, handed to the producer as it is read,
// and answered by one response as Kafka answers (so responses may come out of request order
// across partitions). The window, draining and the end are ProduceReactor's.
//
// Threads: reactions run on gRPC's threads, delivery callbacks on the producer's; gRPC
// operations are issued by StreamReactor's pump.
class ProduceStreamReactor final
    : public ProduceReactor<kafka_sidecar::v1::ProduceRequest, kafka_sidecar::v1::ProduceResponse> {
 public:
  ProduceStreamReactor(broker::Producer& producer, int max_pending, ProduceMetrics& metrics,
                       ProduceStreamRegistry& registry, TraceContext trace = {});

 private:
  int Accept(const kafka_sidecar::v1::ProduceRequest& request) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandOver(const kafka_sidecar::v1::ProduceRequest& request, bool draining,
                bool send_now) override;
  int pending() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_kafka_ + static_cast<int>(responses_.size()) + (write_in_flight_ ? 1 : 0);
  }
  bool settled() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_kafka_ == 0 && responses_.empty();
  }
  const kafka_sidecar::v1::ProduceResponse* TakeNextWrite(bool& more) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnWriteDone(bool ok) override;

  // Queues the answer to one accepted record.
  void Respond(kafka_sidecar::v1::ProduceResponse response);

  // The response gRPC is writing; set by TakeNextWrite, read by the pump.
  kafka_sidecar::v1::ProduceResponse writing_;
  int in_kafka_ ABSL_GUARDED_BY(mu_) = 0;  // accepted, waiting for the producer's answer
  std::deque<kafka_sidecar::v1::ProduceResponse> responses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REACTOR_H_
