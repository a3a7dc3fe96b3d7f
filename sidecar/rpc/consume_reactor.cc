#include "sidecar/rpc/consume_reactor.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sidecar/common/kafka_names.h"
#include "sidecar/rpc/grpc_status.h"

namespace kafka_sidecar::sidecar {

using kafka_sidecar::v1::ConsumeRequest;
using kafka_sidecar::v1::ConsumeResponse;

namespace {

// The subscription's delivery policy as `subscribe` asks for it; INVALID_ARGUMENT naming the
// field when a policy is incomplete or contradicts itself.
absl::StatusOr<DeliveryPolicy> ToDeliveryPolicy(const kafka_sidecar::v1::Subscribe& subscribe) {
  DeliveryPolicy policy;
  if (subscribe.has_retry_policy()) {
    const kafka_sidecar::v1::RetryPolicy& retry = subscribe.retry_policy();
    if (retry.max_backoff_ms() != 0 && retry.max_backoff_ms() < retry.min_backoff_ms()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "subscribe.retry_policy.max_backoff_ms: ", retry.max_backoff_ms(),
          " is below min_backoff_ms ", retry.min_backoff_ms(), " (0 means min_backoff_ms)"));
    }
    policy.min_backoff = absl::Milliseconds(retry.min_backoff_ms());
    policy.max_backoff = absl::Milliseconds(
        retry.max_backoff_ms() == 0 ? retry.min_backoff_ms() : retry.max_backoff_ms());
  }
  if (subscribe.has_dead_letter_policy()) {
    const kafka_sidecar::v1::DeadLetterPolicy& dead = subscribe.dead_letter_policy();
    if (dead.topic().empty()) {
      return absl::InvalidArgumentError(
          "subscribe.dead_letter_policy.topic: name the topic that records given up on go to");
    }
    if (absl::Status valid = ValidateTopicName(dead.topic(), "subscribe.dead_letter_policy.topic");
        !valid.ok()) {
      return valid;
    }
    for (const std::string& topic : subscribe.topics()) {
      if (topic == dead.topic()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "subscribe.dead_letter_policy.topic: '", PrintableName(topic),
            "' is also subscribed to: its dead letters would come back as records"));
      }
    }
    policy.dead_letter_topic = dead.topic();
    policy.max_delivery_attempts = dead.max_delivery_attempts();
  }
  return policy;
}

// The response's bytes as gRPC's, without a copy: the slice owns the buffer from here on.
grpc::ByteBuffer ToByteBuffer(WireResponse response) {
  const absl::string_view bytes = response.bytes();
  char* buffer = response.TakeBuffer().release();
  if (buffer == nullptr) return grpc::ByteBuffer();
  grpc::Slice slice(
      const_cast<char*>(bytes.data()), bytes.size(),
      [](void* owned) { delete[] static_cast<char*>(owned); }, buffer);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

ConsumeReactor::ConsumeReactor(SubscriptionRegistry& registry, uint32_t max_in_flight_cap)
    : registry_(registry),
      max_in_flight_cap_(max_in_flight_cap),
      stream_id_(registry.NextStreamId()) {
  Pump();
}

void ConsumeReactor::Send(WireResponse records) {
  {
    absl::MutexLock lock(&mu_);
    if (end_.has_value()) return;
    outbox_.push_back(std::move(records));
  }
  Pump();
}

void ConsumeReactor::End(const absl::Status& status) { EndWith(status); }

void ConsumeReactor::EndWith(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (!end_.has_value()) {
      end_ = status;
      // Records not yet written were taken back by the subscription (or are now stale).
      outbox_.clear();
    }
  }
  // Always: a write that just completed may be what the finish was waiting for.
  Pump();
}

void ConsumeReactor::OnRead(const ConsumeRequest* request, const absl::Status& end) {
  absl::Status handled = request != nullptr ? Handle(*request) : end;
  const bool ok = request != nullptr;
  {
    absl::MutexLock lock(&mu_);
    read_in_flight_ = false;
    if (!ok) reads_done_ = true;
  }
  if (!ok && end.ok()) {
    // The app half-closed (or went away): it will ack nothing more.
    if (subscription_ != nullptr) subscription_->Detach(stream_id_);
    EndWith(absl::OkStatus());
    return;
  }
  if (!handled.ok()) {
    if (subscription_ != nullptr) subscription_->Detach(stream_id_);
    EndWith(handled);
    return;
  }
  Pump();
}

absl::Status ConsumeReactor::Handle(const ConsumeRequest& request) {
  switch (request.request_case()) {
    case ConsumeRequest::kSubscribe:
      if (subscription_ != nullptr) {
        return absl::InvalidArgumentError("subscribe: only the first message may subscribe");
      }
      return Subscribe(request.subscribe());
    case ConsumeRequest::kAck:
    case ConsumeRequest::kNack:
      if (subscription_ == nullptr) {
        return absl::InvalidArgumentError(
            "subscribe: the first message must be a subscribe, not an ack or nack");
      }
      if (request.has_ack()) {
        subscription_->Ack(stream_id_, request.ack().delivery_ids());
      } else {
        subscription_->Nack(stream_id_, request.nack().delivery_ids(),
                            request.nack().dead_letter(), request.nack().reason());
      }
      return absl::OkStatus();
    case ConsumeRequest::REQUEST_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      subscription_ == nullptr ? "subscribe: the first message must be a subscribe"
                               : "request: one of subscribe, ack or nack must be set");
}

absl::Status ConsumeReactor::Subscribe(const kafka_sidecar::v1::Subscribe& subscribe) {
  if (absl::Status valid = ValidateGroupId(subscribe.group(), "subscribe.group"); !valid.ok()) {
    return valid;
  }
  if (subscribe.topics().empty()) {
    return absl::InvalidArgumentError("subscribe.topics: name at least one topic");
  }
  std::vector<std::string> topics;
  for (int i = 0; i < subscribe.topics_size(); ++i) {
    if (absl::Status valid =
            ValidateTopicName(subscribe.topics(i), absl::StrCat("subscribe.topics[", i, "]"));
        !valid.ok()) {
      return valid;
    }
    topics.push_back(subscribe.topics(i));
  }
  absl::StatusOr<DeliveryPolicy> policy = ToDeliveryPolicy(subscribe);
  if (!policy.ok()) return policy.status();
  uint32_t max_in_flight = subscribe.max_in_flight();
  if (max_in_flight == 0 || max_in_flight > max_in_flight_cap_) max_in_flight = max_in_flight_cap_;
  {
    // Subscribed goes out before any record the subscription sends on Attach.
    absl::MutexLock lock(&mu_);
    ConsumeResponse subscribed;
    subscribed.mutable_subscribed()->set_stream_id(absl::StrCat(stream_id_));
    outbox_.emplace_back(subscribed.SerializeAsString());
  }
  absl::StatusOr<std::shared_ptr<Subscription>> subscription =
      registry_.Attach(subscribe.group(), topics, *policy, stream_id_, this, max_in_flight);
  if (!subscription.ok()) return subscription.status();
  subscription_ = *std::move(subscription);
  return absl::OkStatus();
}

void ConsumeReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
  }
  if (!ok) {
    // The app is gone. Its in-flight records go back to the subscription in OnDone: this
    // reaction may run while the subscription's lock is held (Send -> StartWrite).
    EndWith(absl::CancelledError("the client went away"));
    return;
  }
  Pump();
}

void ConsumeReactor::OnDone() {
  if (subscription_ != nullptr) subscription_->Detach(stream_id_);
  delete this;
}

ConsumeReactor::Actions ConsumeReactor::NextActions() {
  Actions actions;
  if (finished_) return actions;
  if (end_.has_value()) {
    if (!write_in_flight_) {
      finished_ = true;
      actions.finish = true;
      actions.finish_status = ToGrpcStatus(*end_);
    }
    return actions;
  }
  if (!write_in_flight_ && !outbox_.empty()) {
    writing_ = ToByteBuffer(std::move(outbox_.front()));
    outbox_.pop_front();
    write_in_flight_ = true;
    actions.write_bytes = &writing_;
  }
  if (!read_in_flight_ && !reads_done_) {
    read_in_flight_ = true;
    actions.read = true;
  }
  return actions;
}

}  // namespace kafka_sidecar::sidecar
