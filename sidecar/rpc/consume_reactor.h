#ifndef KAFKA_SIDECAR_SIDECAR_RPC_CONSUME_REACTOR_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_CONSUME_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/consume/consumer_stream.h"
#include "sidecar/consume/subscription.h"
#include "sidecar/consume/subscription_registry.h"
#include "sidecar/rpc/stream_reactor.h"

namespace kafka_sidecar::sidecar {

// One Consume call. The first request must be a Subscribe: the stream then joins the
// subscription for (group, topics), answers Subscribed, and writes the RecordBatches the
// subscription sends; Ack and Nack requests go to the subscription. Bad requests end the stream
// with INVALID_ARGUMENT naming the field, and requests whose bytes do not parse with
// INVALID_ARGUMENT saying so.
//
// Threads: reactions on gRPC's threads; Send and End on whichever thread holds the
// subscription's lock. StreamReactor's pump issues every gRPC operation, outside mu_. The
// subscription is never called with mu_ held. The reactor detaches
// from the subscription in OnDone, before deleting itself, so the subscription never calls a
// reactor that is gone.
class ConsumeReactor final
    : public StreamReactor<kafka_sidecar::v1::ConsumeRequest, kafka_sidecar::v1::ConsumeResponse>,
      public ConsumerStream {
 public:
  // `max_in_flight_cap` caps (and is the default of) Subscribe.max_in_flight.
  ConsumeReactor(SubscriptionRegistry& registry, uint32_t max_in_flight_cap);

  // ConsumerStream.
  void Send(WireResponse records) override;
  void End(const absl::Status& status) override;

 private:
  void OnRead(const kafka_sidecar::v1::ConsumeRequest* request, const absl::Status& end) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;
  Actions NextActions() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Handles one request; a non-OK status ends the stream.
  absl::Status Handle(const kafka_sidecar::v1::ConsumeRequest& request);
  absl::Status Subscribe(const kafka_sidecar::v1::Subscribe& subscribe);
  // Ends the stream with `status` once the current write is done.
  void EndWith(const absl::Status& status);

  SubscriptionRegistry& registry_;
  const uint32_t max_in_flight_cap_;
  const uint64_t stream_id_;

  // Touched only in OnRead (one at a time) and OnDone (after every reaction).
  std::shared_ptr<Subscription> subscription_;
  // The response gRPC is writing; set by NextActions.
  grpc::ByteBuffer writing_;

  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> end_ ABSL_GUARDED_BY(mu_);
  std::deque<WireResponse> outbox_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_CONSUME_REACTOR_H_
