#include "sidecar/rpc/kafka_sidecar_service.h"

#include <utility>

#include "sidecar/rpc/consume_reactor.h"
#include "sidecar/rpc/grpc_status.h"
#include "sidecar/rpc/produce_batch_reactor.h"
#include "sidecar/rpc/produce_request.h"
#include "sidecar/rpc/produce_stream_reactor.h"
#include "sidecar/rpc/stream_reactor.h"

namespace kafka_sidecar::sidecar {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;

namespace {

// The call's W3C trace context, from its metadata.
TraceContext TraceOf(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto value = [&metadata](const char* key) {
    auto it = metadata.find(key);
    return it == metadata.end() ? absl::string_view()
                                : absl::string_view(it->second.data(), it->second.size());
  };
  return TraceContext::FromMetadata(value("traceparent"), value("tracestate"));
}

}  // namespace

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
                                                       const grpc::ByteBuffer* request_bytes,
                                                       grpc::ByteBuffer* response_bytes) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (streams_.draining()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the sidecar is shutting down; the record was not produced"));
    return reactor;
  }
  grpc::ByteBuffer bytes(*request_bytes);  // shares the slices
  ProduceRequest request;
  absl::Status valid = ParseRequest(bytes, request);
  if (valid.ok()) valid = ValidateProduceRequest(request);
  if (!valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  HeaderViews headers;
  // The producer copies the record; gRPC keeps `response_bytes` alive until Finish, which the
  // callback calls exactly once.
  const TraceContext trace = TraceOf(*context);
  producer_.Produce(ToRecordView(request, headers, trace),
                    [reactor, response_bytes, request_id = request.request_id(),
                     topic = request.topic()](const broker::DeliveryReport& report) {
                      if (!report.status.ok()) {
                        reactor->Finish(ToGrpcStatus(report.status));
                        return;
                      }
                      ProduceResponse response;
                      response.set_request_id(request_id);
                      response.set_topic(topic);
                      FillProduceResponse(report, &response);
                      SerializeResponse(response, *response_bytes);
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* KafkaSidecarService::ProduceStream(
    grpc::CallbackServerContext* context) {
  return new ProduceStreamReactor(producer_, max_pending_produces_, produce_metrics_, streams_,
                                  TraceOf(*context));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
KafkaSidecarService::ProduceBatchStream(grpc::CallbackServerContext* context) {
  return new ProduceBatchReactor(producer_, max_pending_produces_, produce_metrics_, streams_,
                                 TraceOf(*context));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* KafkaSidecarService::Consume(
    grpc::CallbackServerContext*) {
  return new ConsumeReactor(subscriptions_, max_in_flight_per_stream_);
}

}  // namespace kafka_sidecar::sidecar
