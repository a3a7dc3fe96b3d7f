#include "sidecar/consumer_stream.h"

#include <algorithm>

namespace kafka_sidecar::sidecar {

ArenaResponse::ArenaResponse(size_t bytes_hint) {
  google::protobuf::ArenaOptions options;
  // Records take about twice their payload on the arena (message and string objects).
  options.start_block_size = std::clamp<size_t>(2 * bytes_hint, 1024, size_t{1} << 20);
  options.max_block_size = size_t{1} << 20;
  arena_ = std::make_unique<google::protobuf::Arena>(options);
  response_ = google::protobuf::Arena::CreateMessage<kafka_sidecar::v1::ConsumeResponse>(
      arena_.get());
}

}  // namespace kafka_sidecar::sidecar
