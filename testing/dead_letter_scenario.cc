#include "testing/dead_letter_scenario.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "testing/consume_client.h"
#include "testing/kafka_test_client.h"
#include "testing/probes.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {

using kafka_sidecar::v1::Record;

kafka_sidecar::v1::Subscribe PoisonPolicies(const DeadLetterSetup& setup, uint32_t min_backoff_ms,
                                            uint32_t max_attempts) {
  kafka_sidecar::v1::Subscribe subscribe;
  subscribe.set_group(setup.group);
  subscribe.add_topics(setup.topic);
  subscribe.mutable_retry_policy()->set_min_backoff_ms(min_backoff_ms);
  subscribe.mutable_retry_policy()->set_max_backoff_ms(std::max<uint32_t>(min_backoff_ms, 10000));
  subscribe.mutable_dead_letter_policy()->set_topic(setup.dead_letter_topic);
  subscribe.mutable_dead_letter_policy()->set_max_delivery_attempts(max_attempts);
  return subscribe;
}

void ProduceTen(const DeadLetterSetup& setup) {
  ASSERT_TRUE(ProduceDirect(setup.bootstrap, setup.topic, 10, 20).ok());
}

std::optional<Record> NackOneAckTheRest(ConsumeClient& client, const std::string& poison_key,
                                        bool dead_letter, const std::string& reason) {
  std::optional<Record> poison;
  int acked = 0;
  while (acked < 9 || !poison.has_value()) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    if (!batch.has_value()) {
      ADD_FAILURE() << "the stream ended: " << client.AwaitEnd().error_message();
      return std::nullopt;
    }
    for (const Record& r : batch->records()) {
      if (poison.has_value() && r.partition() == poison->partition() &&
          r.offset() == poison->offset()) {
        ADD_FAILURE() << "the nacked record came again, at attempt " << r.delivery_attempt();
        return std::nullopt;
      }
      if (r.key() == poison_key && !poison.has_value()) {
        poison = r;
        EXPECT_TRUE(client.Nack({r.delivery_id()}, dead_letter, reason));
      } else {
        EXPECT_TRUE(client.Ack({r.delivery_id()}));
        ++acked;
      }
    }
  }
  return poison;
}

std::map<std::string, std::string> Headers(const ConsumedRecord& record) {
  std::map<std::string, std::string> headers;
  for (const auto& [key, value] : record.headers) headers[key] = value;
  return headers;
}

void ExpectCommittedToTheEnd(const DeadLetterSetup& setup) {
  absl::StatusOr<std::vector<int64_t>> ends =
      EndOffsets(setup.bootstrap, setup.topic, setup.partitions);
  ASSERT_TRUE(ends.ok()) << ends.status();
  std::vector<int64_t> committed;
  WaitUntil(
      [&] {
        auto read = CommittedOffsets(setup.bootstrap, setup.group, setup.topic, setup.partitions);
        if (read.ok()) committed = *read;
        return committed == *ends;
      },
      absl::Seconds(30), absl::Milliseconds(50));
  EXPECT_EQ(committed, *ends) << "the group did not commit every partition to its end";
}

void ExpectBackoffThenDeadLetter(const DeadLetterSetup& setup, const SidecarProcess& sidecar) {
  ProduceTen(setup);
  auto stub = sidecar.NewStub();
  ConsumeClient client(*stub, absl::Seconds(90));
  ASSERT_TRUE(client.Subscribe(PoisonPolicies(setup, /*min_backoff_ms=*/300, /*max_attempts=*/3)));

  // key-0's first record is the poison: nacked every time. Everything else is acked. Ten more
  // records (key-0 .. key-9 again) are produced right after its first nack.
  std::optional<Record> poison;
  std::vector<absl::Time> deliveries, nacks;  // of the poison
  std::optional<absl::Time> later_key0;       // when key-0's next record arrived
  std::vector<absl::Time> later_others;       // when the other keys' next records arrived
  int first_wave = 0;
  while (!later_key0.has_value() || later_others.size() < 9) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    ASSERT_TRUE(batch.has_value()) << "the stream ended: " << client.AwaitEnd().error_message();
    const absl::Time now = absl::Now();
    std::vector<uint64_t> acks;
    for (const Record& r : batch->records()) {
      if (r.key() == "key-0" && (!poison.has_value() || r.offset() == poison->offset())) {
        if (!poison.has_value()) poison = r;
        EXPECT_EQ(r.delivery_attempt(), deliveries.size() + 1);
        deliveries.push_back(now);
        ASSERT_LE(deliveries.size(), 3u) << "delivered again after its last attempt";
        ASSERT_TRUE(client.Nack({r.delivery_id()}, /*dead_letter=*/false, "bad amount"));
        nacks.push_back(absl::Now());
        if (nacks.size() == 1) ProduceTen(setup);
        continue;
      }
      acks.push_back(r.delivery_id());
      if (!poison.has_value() || first_wave < 9) {
        ++first_wave;
      } else if (r.key() == "key-0") {
        later_key0 = now;
      } else {
        later_others.push_back(now);
      }
    }
    if (!acks.empty()) {
      ASSERT_TRUE(client.Ack(acks));
    }
  }

  ASSERT_EQ(deliveries.size(), 3u);
  EXPECT_GE(deliveries[1] - nacks[0], absl::Milliseconds(300));
  EXPECT_GE(deliveries[2] - nacks[1], absl::Milliseconds(600));
  EXPECT_GT(*later_key0, nacks[2]) << "key-0's later record overtook the poison";
  for (absl::Time t : later_others) {
    EXPECT_LT(t, deliveries[2]) << "other keys waited for the poison's backoff";
  }

  absl::StatusOr<std::vector<ConsumedRecord>> dead =
      ReadTopic(setup.bootstrap, setup.dead_letter_topic, 1, absl::Seconds(10));
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].key, std::optional<std::string>("key-0"));
  EXPECT_EQ((*dead)[0].value, poison->value());
  const std::map<std::string, std::string> headers = Headers((*dead)[0]);
  EXPECT_EQ(headers.at("dlq.original.topic"), setup.topic);
  EXPECT_EQ(headers.at("dlq.original.partition"), absl::StrCat(poison->partition()));
  EXPECT_EQ(headers.at("dlq.original.offset"), absl::StrCat(poison->offset()));
  EXPECT_EQ(headers.at("dlq.original.timestamp_ms"), absl::StrCat(poison->timestamp_ms()));
  EXPECT_EQ(headers.at("dlq.group"), setup.group);
  EXPECT_EQ(headers.at("dlq.delivery.attempts"), "3");
  EXPECT_EQ(headers.at("dlq.reason"), "bad amount");

  // Everything counts as done now, the poison included.
  ExpectCommittedToTheEnd(setup);
  const std::string page = HttpGet(sidecar.metrics_port(), "/metrics").second;
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_records_dead_lettered_total"), 1);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_records_retried_total"), 2);
}

}  // namespace kafka_sidecar::testing
