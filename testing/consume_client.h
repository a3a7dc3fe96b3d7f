#ifndef KAFKA_SIDECAR_TESTING_CONSUME_CLIENT_H_
#define KAFKA_SIDECAR_TESTING_CONSUME_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/kafka_sidecar.grpc.pb.h"

namespace kafka_sidecar::testing {

// A test app's Consume stream over the real gRPC API (sync client). Not thread-safe, except
// Cancel.
class ConsumeClient {
 public:
  // Opens the stream; the whole call ends by `deadline` at the latest.
  ConsumeClient(kafka_sidecar::v1::KafkaSidecar::Stub& stub, absl::Duration deadline);

  // Sends `request` as is (for bad-request tests).
  bool Send(const kafka_sidecar::v1::ConsumeRequest& request);

  // Subscribes and waits for Subscribed; false when the stream ended instead.
  bool Subscribe(const std::string& group, const std::vector<std::string>& topics,
                 uint32_t max_in_flight = 0);
  // The same with the whole Subscribe message (policies, ...).
  bool Subscribe(const kafka_sidecar::v1::Subscribe& subscribe);
  const std::string& stream_id() const { return stream_id_; }

  // The next batch of records; nullopt when the stream ended (see Finish).
  std::optional<kafka_sidecar::v1::RecordBatch> Next();

  // Reads until `count` records arrived (acking each batch when `ack`), or the stream ends.
  std::vector<kafka_sidecar::v1::Record> Receive(size_t count, bool ack);

  bool Ack(const std::vector<uint64_t>& delivery_ids);
  bool Nack(const std::vector<uint64_t>& delivery_ids, bool dead_letter = false,
            const std::string& reason = "");

  // Half-closes: the server then ends the stream.
  void CloseWrites();
  // Half-closes and returns the final status.
  grpc::Status Finish();
  // Reads what is left and returns the status the server ended the stream with.
  grpc::Status AwaitEnd();
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<kafka_sidecar::v1::ConsumeRequest,
                                           kafka_sidecar::v1::ConsumeResponse>>
      stream_;
  std::string stream_id_;
  bool writes_done_ = false;
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_CONSUME_CLIENT_H_
