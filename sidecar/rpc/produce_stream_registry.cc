#include "sidecar/rpc/produce_stream_registry.h"

namespace kafka_sidecar::sidecar {

void ProduceStreamRegistry::DrainAll() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  for (DrainableStream* stream : streams_) stream->Drain();
}

bool ProduceStreamRegistry::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool ProduceStreamRegistry::WaitUntilEmpty(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
  return mu_.AwaitWithDeadline(absl::Condition(&empty), deadline);
}

bool ProduceStreamRegistry::Add(DrainableStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.insert(stream);
  return draining_;
}

void ProduceStreamRegistry::Remove(DrainableStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

}  // namespace kafka_sidecar::sidecar
