#include "sidecar/consume/hash_ring.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {
namespace {

std::vector<uint64_t> Keys(int n) {
  std::vector<uint64_t> keys;
  for (int i = 0; i < n; ++i) keys.push_back(HashRing::Hash(absl::StrCat("key-", i)));
  return keys;
}

TEST(HashRingTest, SameKeyAlwaysMapsToTheSameMember) {
  HashRing ring;
  for (uint64_t m : {7, 3, 11, 5}) ring.Add(m);
  HashRing same_members_other_order;
  for (uint64_t m : {5, 11, 3, 7}) same_members_other_order.Add(m);
  for (uint64_t key : Keys(5000)) {
    EXPECT_EQ(ring.Pick(key), ring.Pick(key));
    EXPECT_EQ(ring.Pick(key), same_members_other_order.Pick(key));
  }
}

TEST(HashRingTest, SpreadsKeysEvenly) {
  HashRing ring;
  for (uint64_t m = 1; m <= 4; ++m) ring.Add(m);
  std::map<uint64_t, int> share;
  for (uint64_t key : Keys(100000)) share[ring.Pick(key)]++;
  for (const auto& [member, n] : share) {
    EXPECT_NEAR(n, 25000, 25000 * 0.15) << "member " << member;
  }
}

TEST(HashRingTest, JoinMovesAboutOneInSOfTheKeysAndOnlyToTheNewMember) {
  HashRing ring;
  for (uint64_t m = 1; m <= 4; ++m) ring.Add(m);
  const std::vector<uint64_t> keys = Keys(20000);
  std::vector<uint64_t> before;
  for (uint64_t key : keys) before.push_back(ring.Pick(key));
  ring.Add(5);
  int moved = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint64_t now = ring.Pick(keys[i]);
    if (now != before[i]) {
      ++moved;
      EXPECT_EQ(now, 5u) << "a key moved between two old members";
    }
  }
  EXPECT_NEAR(moved, 20000 / 5, 20000 / 5 * 0.25);
}

TEST(HashRingTest, LeaveMovesOnlyTheLeaversKeys) {
  HashRing ring;
  for (uint64_t m = 1; m <= 4; ++m) ring.Add(m);
  const std::vector<uint64_t> keys = Keys(20000);
  std::vector<uint64_t> before;
  for (uint64_t key : keys) before.push_back(ring.Pick(key));
  ring.Remove(2);
  int moved = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint64_t now = ring.Pick(keys[i]);
    EXPECT_NE(now, 2u);
    if (before[i] != 2) {
      EXPECT_EQ(now, before[i]) << "a key of a staying member moved";
    } else {
      ++moved;
    }
  }
  EXPECT_NEAR(moved, 20000 / 4, 20000 / 4 * 0.25);
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
