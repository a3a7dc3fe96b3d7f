#ifndef KAFKA_SIDECAR_SIDECAR_KAFKA_SIDECAR_SERVICE_H_
#define KAFKA_SIDECAR_SIDECAR_KAFKA_SIDECAR_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/metrics.h"
#include "sidecar/produce_stream_registry.h"
#include "sidecar/subscription_registry.h"

namespace kafka_sidecar::sidecar {

// The kafka_sidecar.v1.KafkaSidecar service on gRPC's callback API: no thread per call.
// Thread-safe.
class KafkaSidecarService final : public kafka_sidecar::v1::KafkaSidecar::CallbackService {
 public:
  // `producer`, `produce_metrics` and `subscriptions` must outlive the service.
  KafkaSidecarService(broker::Producer& producer, int max_pending_produces,
                      ProduceMetrics& produce_metrics, SubscriptionRegistry& subscriptions,
                      uint32_t max_in_flight_per_stream);

  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* context,
                                    const kafka_sidecar::v1::ProduceRequest* request,
                                    kafka_sidecar::v1::ProduceResponse* response) override;

  grpc::ServerBidiReactor<kafka_sidecar::v1::ProduceRequest, kafka_sidecar::v1::ProduceResponse>*
  ProduceStream(grpc::CallbackServerContext* context) override;

  grpc::ServerBidiReactor<kafka_sidecar::v1::ProduceBatch, kafka_sidecar::v1::ProduceBatchResult>*
  ProduceBatchStream(grpc::CallbackServerContext* context) override;

  grpc::ServerBidiReactor<kafka_sidecar::v1::ConsumeRequest, kafka_sidecar::v1::ConsumeResponse>*
  Consume(grpc::CallbackServerContext* context) override;

  // Stops taking new records: Produce answers UNAVAILABLE, and streams stop reading and end
  // with UNAVAILABLE once every record they accepted is answered.
  void BeginDrain() { streams_.DrainAll(); }

  // Waits until every ProduceStream and ProduceBatchStream has ended or `deadline` passes;
  // true when all have.
  bool WaitForStreams(absl::Time deadline) { return streams_.WaitUntilEmpty(deadline); }

 private:
  broker::Producer& producer_;
  const int max_pending_produces_;
  ProduceMetrics& produce_metrics_;
  ProduceStreamRegistry streams_;
  SubscriptionRegistry& subscriptions_;
  const uint32_t max_in_flight_per_stream_;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_KAFKA_SIDECAR_SERVICE_H_
