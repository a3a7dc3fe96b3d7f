#ifndef KAFKA_SIDECAR_SIDECAR_RPC_KAFKA_SIDECAR_SERVICE_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_KAFKA_SIDECAR_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "broker/producer.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/common/metrics.h"
#include "sidecar/consume/subscription_registry.h"
#include "sidecar/rpc/produce_stream_registry.h"

namespace kafka_sidecar::sidecar {

// Every method of kafka_sidecar.v1.KafkaSidecar, raw: requests arrive as bytes, so that bytes
// that do not parse are answered INVALID_ARGUMENT (gRPC's own parsing answers a unary call
// UNIMPLEMENTED with no message, and makes a stream look half-closed).
using RawKafkaSidecarService = kafka_sidecar::v1::KafkaSidecar::WithRawCallbackMethod_Produce<
    kafka_sidecar::v1::KafkaSidecar::WithRawCallbackMethod_ProduceStream<
        kafka_sidecar::v1::KafkaSidecar::WithRawCallbackMethod_ProduceBatchStream<
            kafka_sidecar::v1::KafkaSidecar::WithRawCallbackMethod_Consume<
                kafka_sidecar::v1::KafkaSidecar::Service>>>>;

// The kafka_sidecar.v1.KafkaSidecar service on gRPC's callback API: no thread per call.
// Thread-safe.
class KafkaSidecarService final : public RawKafkaSidecarService {
 public:
  // `producer`, `produce_metrics` and `subscriptions` must outlive the service.
  KafkaSidecarService(broker::Producer& producer, int max_pending_produces,
                      ProduceMetrics& produce_metrics, SubscriptionRegistry& subscriptions,
                      uint32_t max_in_flight_per_stream);

  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ProduceStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ProduceBatchStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Consume(
      grpc::CallbackServerContext* context) override;

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

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_KAFKA_SIDECAR_SERVICE_H_
