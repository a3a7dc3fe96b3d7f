#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_HASH_RING_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_HASH_RING_H_

#include <cstdint>

#include "absl/container/btree_map.h"
#include "absl/strings/string_view.h"

namespace kafka_sidecar::sidecar {

// A consistent hash ring over members (stream ids) with virtual nodes: each member owns the
// arcs before its points. When a member joins or leaves, only the keys of the arcs it gains
// or loses move: about 1/S of them. Adding or removing a member costs O(V log(V*S)) for V
// virtual nodes and S members, so thousands of streams join and leave cheaply. Not thread-safe.
class HashRing {
 public:
  explicit HashRing(int virtual_nodes = 160) : virtual_nodes_(virtual_nodes) {}

  void Add(uint64_t member);
  void Remove(uint64_t member);
  bool empty() const { return points_.empty(); }

  // The member that owns `key_hash`. The ring must not be empty.
  uint64_t Pick(uint64_t key_hash) const;

  // A well-mixed 64-bit hash, stable across processes and runs.
  static uint64_t Hash(absl::string_view bytes, uint64_t seed = 0);

 private:
  const int virtual_nodes_;
  // The member's `i`th point.
  static uint64_t Point(uint64_t member, int i);

  // point -> member. Two members hashing to one point (about never) share it: the later one
  // keeps it until it leaves; the arc then goes to the next point.
  absl::btree_map<uint64_t, uint64_t> points_;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUME_HASH_RING_H_
