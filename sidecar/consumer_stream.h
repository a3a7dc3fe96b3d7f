#ifndef KAFKA_SIDECAR_SIDECAR_CONSUMER_STREAM_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUMER_STREAM_H_

#include "absl/status/status.h"
#include "proto/kafka_sidecar.pb.h"

namespace kafka_sidecar::sidecar {

// What a Subscription needs of one app stream (ConsumeReactor; fakes in tests). Both methods
// are called with the subscription's lock held: they must not block and must not call back
// into the subscription.
class ConsumerStream {
 public:
  virtual ~ConsumerStream() = default;

  // Queues records for the app.
  virtual void Send(kafka_sidecar::v1::RecordBatch batch) = 0;

  // Ends the stream with `status`. The subscription has already let go of the stream and of
  // its in-flight records.
  virtual void End(const absl::Status& status) = 0;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUMER_STREAM_H_
