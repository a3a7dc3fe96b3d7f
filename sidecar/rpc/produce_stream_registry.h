#ifndef KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REGISTRY_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REGISTRY_H_

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kafka_sidecar::sidecar {

// A produce stream (ProduceStream or ProduceBatchStream) that shutdown can drain.
class DrainableStream {
 public:
  // Stops reading; ends the stream with UNAVAILABLE once every record it accepted is answered.
  // Any thread; does not block.
  virtual void Drain() = 0;

 protected:
  ~DrainableStream() = default;
};

// The live produce streams, so that shutdown can drain them. Thread-safe.
class ProduceStreamRegistry {
 public:
  // From now on every live and every new stream drains: it reads no more records, answers
  // those it accepted, and ends with UNAVAILABLE.
  void DrainAll();
  bool draining() const;

  // Waits until no stream is live or `deadline` passes; true when none is live.
  bool WaitUntilEmpty(absl::Time deadline);

  // For the streams, from their constructor and OnDone. Add returns whether the registry is
  // draining (the stream then drains from the start).
  bool Add(DrainableStream* stream);
  void Remove(DrainableStream* stream);

 private:
  mutable absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<DrainableStream*> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_STREAM_REGISTRY_H_
