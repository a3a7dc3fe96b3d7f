#ifndef KAFKA_SIDECAR_TESTING_GROUP_LOG_H_
#define KAFKA_SIDECAR_TESTING_GROUP_LOG_H_

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

// What a sidecar's log says about its consumer group memberships.

namespace kafka_sidecar::testing {

// The partitions of `topic` that a sidecar's log says its membership of `group` holds now: each
// rebalance callback logs "[group] assigned t/p,..." (with cooperative-sticky, the partitions
// added), "[group] revoked ..." or "[group] lost ..." (the partitions taken away).
std::set<int32_t> HeldPartitions(const std::string& log, const std::string& group,
                                 const std::string& topic);

// What a sidecar's log says about its group memberships from byte `since` on: its own lines
// and librdkafka's cgrp debug output (what the member sent the coordinator and heard back,
// round by round), without the routine heartbeats, commits and assignment dumps; the last
// `max_lines` of them.
std::string GroupLog(const std::string& log, size_t since, size_t max_lines);

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_GROUP_LOG_H_
