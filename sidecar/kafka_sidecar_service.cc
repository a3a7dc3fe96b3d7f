#include "sidecar/kafka_sidecar_service.h"

#include <utility>

#include "sidecar/consume_reactor.h"
#include "sidecar/grpc_status.h"
#include "sidecar/produce_batch_reactor.h"
#include "sidecar/produce_request.h"
#include "sidecar/produce_stream_reactor.h"

namespace kafka_sidecar::sidecar {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;

KafkaSidecarService::KafkaSidecarService(broker::Producer& producer, int max_pending_produces,
                                         ProduceMetrics& produce_metrics,
                                         SubscriptionRegistry& subscriptions,
                                         uint32_t max_in_flight_per_stream)
    : producer_(producer),
      max_pending_produces_(max_pending_produces),
      produce_metrics_(produce_metrics),
      subscriptions_(subscriptions),
      max_in_flight_per_stream_(max_in_flight_per_stream) {}

grpc::ServerUnaryReactor* KafkaSidecarService::Produce(grpc::CallbackServerContext* context,
                                                       const ProduceRequest* request,
                                                       ProduceResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (streams_.draining()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the sidecar is shutting down; the record was not produced"));
    return reactor;
  }
  if (absl::Status valid = ValidateProduceRequest(*request); !valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  response->set_request_id(request->request_id());
  response->set_topic(request->topic());
  HeaderViews headers;
  // gRPC keeps `response` alive until Finish, which the callback calls exactly once.
  producer_.Produce(ToRecordView(*request, headers),
                    [reactor, response](const broker::DeliveryReport& report) {
                      if (!report.status.ok()) {
                        reactor->Finish(ToGrpcStatus(report.status));
                        return;
                      }
                      FillProduceResponse(report, response);
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

grpc::ServerBidiReactor<ProduceRequest, ProduceResponse>* KafkaSidecarService::ProduceStream(
    grpc::CallbackServerContext*) {
  return new ProduceStreamReactor(producer_, max_pending_produces_, produce_metrics_, streams_);
}

grpc::ServerBidiReactor<kafka_sidecar::v1::ProduceBatch, kafka_sidecar::v1::ProduceBatchResult>*
KafkaSidecarService::ProduceBatchStream(grpc::CallbackServerContext*) {
  return new ProduceBatchReactor(producer_, max_pending_produces_, produce_metrics_, streams_);
}

grpc::ServerBidiReactor<kafka_sidecar::v1::ConsumeRequest, kafka_sidecar::v1::ConsumeResponse>*
KafkaSidecarService::Consume(grpc::CallbackServerContext*) {
  return new ConsumeReactor(subscriptions_, max_in_flight_per_stream_);
}

}  // namespace kafka_sidecar::sidecar
