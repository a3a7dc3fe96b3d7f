#ifndef KAFKA_SIDECAR_TESTING_PRODUCE_STREAM_CLIENT_H_
#define KAFKA_SIDECAR_TESTING_PRODUCE_STREAM_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <vector>

#include "proto/kafka_sidecar.grpc.pb.h"

namespace kafka_sidecar::testing {

struct ProduceStreamResult {
  std::vector<kafka_sidecar::v1::ProduceResponse> responses;
  grpc::Status status;
  int written = 0;  // requests the client managed to write before the stream ended
};

// Runs one ProduceStream: a thread writes `requests` (then half-closes) while this thread
// reads responses until the server ends the stream. `deadline_seconds` bounds the whole call.
ProduceStreamResult RunProduceStream(kafka_sidecar::v1::KafkaSidecar::Stub& stub,
                                     const std::vector<kafka_sidecar::v1::ProduceRequest>& requests,
                                     int deadline_seconds = 60);

struct BatchStreamResult {
  std::vector<kafka_sidecar::v1::ProduceBatchResult> results;
  grpc::Status status;
};

// Runs one ProduceBatchStream the same way: a thread writes `batches` (then half-closes) while
// this thread reads results until the server ends the stream.
BatchStreamResult RunProduceBatchStream(kafka_sidecar::v1::KafkaSidecar::Stub& stub,
                                        const std::vector<kafka_sidecar::v1::ProduceBatch>& batches,
                                        int deadline_seconds = 60);

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_PRODUCE_STREAM_CLIENT_H_
