#include "sidecar/consume/hash_ring.h"

namespace kafka_sidecar::sidecar {
namespace {

// The finalizer of MurmurHash3: spreads every input bit over the whole word.
uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t HashRing::Hash(absl::string_view bytes, uint64_t seed) {
  // FNV-1a over the bytes, then mixed.
  uint64_t h = 0xcbf29ce484222325ULL ^ Mix(seed + 1);
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix(h);
}

uint64_t HashRing::Point(uint64_t member, int i) {
  return Mix(Mix(member) + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
}

void HashRing::Add(uint64_t member) {
  for (int i = 0; i < virtual_nodes_; ++i) points_.insert_or_assign(Point(member, i), member);
}

void HashRing::Remove(uint64_t member) {
  for (int i = 0; i < virtual_nodes_; ++i) {
    auto it = points_.find(Point(member, i));
    if (it != points_.end() && it->second == member) points_.erase(it);
  }
}

uint64_t HashRing::Pick(uint64_t key_hash) const {
  auto it = points_.lower_bound(key_hash);
  if (it == points_.end()) it = points_.begin();
  return it->second;
}

}  // namespace kafka_sidecar::sidecar
