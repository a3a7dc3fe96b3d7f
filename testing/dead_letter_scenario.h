#ifndef KAFKA_SIDECAR_TESTING_DEAD_LETTER_SCENARIO_H_
#define KAFKA_SIDECAR_TESTING_DEAD_LETTER_SCENARIO_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "proto/kafka_sidecar.pb.h"
#include "testing/consume_client.h"
#include "testing/kafka_test_client.h"
#include "testing/sidecar_process.h"

namespace kafka_sidecar::testing {

// Where the poison-record scenarios run: a topic of `partitions` partitions and its dead-letter
// topic, both existing and empty, read by `group`.
struct DeadLetterSetup {
  std::string bootstrap;
  std::string topic = "payments";
  std::string dead_letter_topic = "payments.dlq";
  int partitions = 3;
  std::string group = "billing";
};

// A Subscribe of `setup`'s group and topic with a retry policy (`min_backoff_ms`, doubling up to
// at least 10 s) and a dead-letter policy (`max_attempts`).
kafka_sidecar::v1::Subscribe PoisonPolicies(const DeadLetterSetup& setup, uint32_t min_backoff_ms,
                                            uint32_t max_attempts);

// Ten records to `setup.topic`: keys key-0 .. key-9 in turn.
void ProduceTen(const DeadLetterSetup& setup);

// Reads `client`'s records (of ProduceTen) until the first record of `poison_key` was nacked
// (with `dead_letter` and `reason`) and the nine others acked; the poison record, or nullopt
// after a failure. A failure too if the poison came again meanwhile.
std::optional<kafka_sidecar::v1::Record> NackOneAckTheRest(ConsumeClient& client,
                                                           const std::string& poison_key,
                                                           bool dead_letter,
                                                           const std::string& reason);

// A record's headers by key.
std::map<std::string, std::string> Headers(const ConsumedRecord& record);

// Waits (up to 30 s) until the group's commits reach every partition's end; a failure if not.
void ExpectCommittedToTheEnd(const DeadLetterSetup& setup);

// The scenario of the retry and dead-letter policies, shared by the mock and real-Kafka
// suites, through `sidecar`: a record nacked every time with max_delivery_attempts=3 and
// min_backoff_ms=300 is delivered exactly 3 times, at least 300 ms and then 600 ms apart, then
// lands in the dead-letter topic with the dlq.* headers; the other keys' records flow
// meanwhile; its key's later record (produced after its first nack) comes only after its last
// nack; and the group's commits reach every partition's end, the poison's included. Reports
// failures through gtest.
void ExpectBackoffThenDeadLetter(const DeadLetterSetup& setup, const SidecarProcess& sidecar);

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_DEAD_LETTER_SCENARIO_H_
