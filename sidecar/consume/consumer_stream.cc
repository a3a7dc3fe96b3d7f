#include "sidecar/consume/consumer_stream.h"

#include <algorithm>

namespace kafka_sidecar::sidecar {

ArenaResponse::ArenaResponse(size_t bytes_hint) {
  google::protobuf::ArenaOptions options;
  // Records take about twice their payload on the arena (message and string objects). Blocks
  // stay below malloc's mmap threshold (128 KiB): mapping and unmapping a block for every
  // batch costs page faults.
  constexpr size_t kMaxBlock = size_t{64} << 10;
  options.start_block_size = std::clamp<size_t>(2 * bytes_hint, 1024, kMaxBlock);
  options.max_block_size = kMaxBlock;
  arena_ = std::make_unique<google::protobuf::Arena>(options);
  response_ = google::protobuf::Arena::CreateMessage<kafka_sidecar::v1::ConsumeResponse>(
      arena_.get());
}

}  // namespace kafka_sidecar::sidecar
