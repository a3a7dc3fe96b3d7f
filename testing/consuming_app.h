#ifndef KAFKA_SIDECAR_TESTING_CONSUMING_APP_H_
#define KAFKA_SIDECAR_TESTING_CONSUMING_APP_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "testing/consume_client.h"

namespace kafka_sidecar::testing {

// One record as one app received it.
struct Delivery {
  std::string app;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  uint32_t attempt = 0;
  uint64_t delivery_id = 0;
  absl::Time received;
  absl::Time acked = absl::InfiniteFuture();  // when the app sent its ack
};

// What every app of a test received, in the order it arrived. Thread-safe.
class DeliveryLog {
 public:
  void Add(std::vector<Delivery> deliveries);
  void MarkAcked(const std::string& app, const std::vector<uint64_t>& delivery_ids,
                 absl::Time at);

  // Waits until `done` holds over the deliveries so far, or `timeout` passes (false).
  bool WaitUntil(const std::function<bool(const std::vector<Delivery>&)>& done,
                 absl::Duration timeout);
  std::vector<Delivery> Snapshot() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<std::string, uint64_t>, size_t> index_ ABSL_GUARDED_BY(mu_);
};

// (partition, offset) of every delivery, duplicates included.
std::vector<std::pair<int32_t, int64_t>> Positions(const std::vector<Delivery>& deliveries);
// How many different records the deliveries hold.
size_t DistinctRecords(const std::vector<Delivery>& deliveries);

// A test app: one Consume stream, read on a thread of its own, that logs every record and
// acks each batch as it arrives, unless told to hold. Thread-safe.
class ConsumingApp {
 public:
  // Opens the stream and subscribes (check subscribed()).
  ConsumingApp(std::string name, kafka_sidecar::v1::KafkaSidecar::Stub& stub,
               const std::string& group, const std::vector<std::string>& topics,
               uint32_t max_in_flight, DeliveryLog& log,
               absl::Duration deadline = absl::Minutes(3));
  // Cancels the stream if it still runs.
  ~ConsumingApp();

  bool subscribed() const { return subscribed_; }

  // Stops acking: records stay in flight.
  void Hold();
  // Acks every record held and goes back to acking each batch.
  void Release();
  // Records received and not acked.
  size_t unacked();

  // Half-closes and waits for the server to end the stream; its status.
  grpc::Status Finish();
  // Waits for the server to end the stream; its status.
  grpc::Status AwaitEnd();

 private:
  void Read();
  void AckLocked(std::vector<uint64_t> ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  DeliveryLog& log_;
  ConsumeClient client_;  // reads on reader_; writes under mu_
  bool subscribed_ = false;
  std::thread reader_;
  grpc::Status status_;  // set by reader_ as it ends

  absl::Mutex mu_;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<uint64_t> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_CONSUMING_APP_H_
