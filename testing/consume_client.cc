#include "testing/consume_client.h"

namespace kafka_sidecar::testing {

using kafka_sidecar::v1::ConsumeRequest;
using kafka_sidecar::v1::ConsumeResponse;

ConsumeClient::ConsumeClient(kafka_sidecar::v1::KafkaSidecar::Stub& stub,
                             absl::Duration deadline) {
  context_.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  stream_ = stub.Consume(&context_);
}

bool ConsumeClient::Send(const ConsumeRequest& request) { return stream_->Write(request); }

bool ConsumeClient::Subscribe(const std::string& group, const std::vector<std::string>& topics,
                              uint32_t max_in_flight) {
  kafka_sidecar::v1::Subscribe subscribe;
  subscribe.set_group(group);
  for (const std::string& topic : topics) subscribe.add_topics(topic);
  subscribe.set_max_in_flight(max_in_flight);
  return Subscribe(subscribe);
}

bool ConsumeClient::Subscribe(const kafka_sidecar::v1::Subscribe& subscribe) {
  ConsumeRequest request;
  *request.mutable_subscribe() = subscribe;
  if (!stream_->Write(request)) return false;
  ConsumeResponse response;
  if (!stream_->Read(&response) || !response.has_subscribed()) return false;
  stream_id_ = response.subscribed().stream_id();
  return true;
}

std::optional<kafka_sidecar::v1::RecordBatch> ConsumeClient::Next() {
  ConsumeResponse response;
  while (stream_->Read(&response)) {
    if (response.has_records()) return std::move(*response.mutable_records());
  }
  return std::nullopt;
}

std::vector<kafka_sidecar::v1::Record> ConsumeClient::Receive(size_t count, bool ack) {
  std::vector<kafka_sidecar::v1::Record> records;
  while (records.size() < count) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = Next();
    if (!batch.has_value()) break;
    std::vector<uint64_t> ids;
    for (const kafka_sidecar::v1::Record& record : batch->records()) {
      ids.push_back(record.delivery_id());
      records.push_back(record);
    }
    if (ack) Ack(ids);
  }
  return records;
}

bool ConsumeClient::Ack(const std::vector<uint64_t>& delivery_ids) {
  ConsumeRequest request;
  for (uint64_t id : delivery_ids) request.mutable_ack()->add_delivery_ids(id);
  return stream_->Write(request);
}

bool ConsumeClient::Nack(const std::vector<uint64_t>& delivery_ids, bool dead_letter,
                         const std::string& reason) {
  ConsumeRequest request;
  for (uint64_t id : delivery_ids) request.mutable_nack()->add_delivery_ids(id);
  request.mutable_nack()->set_dead_letter(dead_letter);
  request.mutable_nack()->set_reason(reason);
  return stream_->Write(request);
}

void ConsumeClient::CloseWrites() {
  if (writes_done_) return;
  writes_done_ = true;
  stream_->WritesDone();
}

grpc::Status ConsumeClient::Finish() {
  CloseWrites();
  return AwaitEnd();
}

grpc::Status ConsumeClient::AwaitEnd() {
  ConsumeResponse response;
  while (stream_->Read(&response)) {
  }
  return stream_->Finish();
}

}  // namespace kafka_sidecar::testing
