#include "testing/produce_stream_client.h"

#include <chrono>
#include <thread>

namespace kafka_sidecar::testing {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;

ProduceStreamResult RunProduceStream(kafka_sidecar::v1::KafkaSidecar::Stub& stub,
                                     const std::vector<ProduceRequest>& requests,
                                     int deadline_seconds) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_seconds));
  auto stream = stub.ProduceStream(&context);
  ProduceStreamResult result;
  std::thread writer([&] {
    for (const ProduceRequest& request : requests) {
      if (!stream->Write(request)) return;
      ++result.written;
    }
    stream->WritesDone();
  });
  ProduceResponse response;
  while (stream->Read(&response)) result.responses.push_back(response);
  writer.join();
  result.status = stream->Finish();
  return result;
}

BatchStreamResult RunProduceBatchStream(kafka_sidecar::v1::KafkaSidecar::Stub& stub,
                                        const std::vector<kafka_sidecar::v1::ProduceBatch>& batches,
                                        int deadline_seconds) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_seconds));
  auto stream = stub.ProduceBatchStream(&context);
  std::thread writer([&] {
    for (const kafka_sidecar::v1::ProduceBatch& batch : batches) {
      if (!stream->Write(batch)) return;
    }
    stream->WritesDone();
  });
  BatchStreamResult result;
  kafka_sidecar::v1::ProduceBatchResult batch_result;
  while (stream->Read(&batch_result)) result.results.push_back(batch_result);
  writer.join();
  result.status = stream->Finish();
  return result;
}

}  // namespace kafka_sidecar::testing
