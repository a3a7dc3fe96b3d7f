#include "sidecar/consume/dispatcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {
namespace {

using broker::Message;
using kafka_sidecar::v1::Record;

constexpr int kPartitions = 6;

// An app stream that keeps what it was sent until the test acks it.
class FakeStream final : public ConsumerStream {
 public:
  void Send(ArenaResponse response) override {
    for (const Record& record : response->records().records()) unacked.push_back(record);
  }
  void End(const absl::Status& status) override { ended = status; }

  std::vector<Record> unacked;
  std::optional<absl::Status> ended;
};

// Records over `keys` keys, partitioned by key, offsets increasing per partition.
std::vector<Message> MakeRecords(int count, int keys) {
  std::vector<Message> records;
  std::vector<int64_t> next(kPartitions, 0);
  for (int i = 0; i < count; ++i) {
    Message m;
    const int key = (i * 7919) % keys;
    m.tp = {"t", key % kPartitions};
    m.offset = next[m.tp.partition]++;
    m.key = absl::StrCat("key-", key);
    m.value = absl::StrCat(i);
    records.push_back(std::move(m));
  }
  return records;
}

// Checks the ordering rules on every delivery and ack, across streams joining and leaving.
class OrderChecker {
 public:
  // A record was delivered to `stream`.
  void Delivered(uint64_t stream, const Record& r) {
    Key& key = keys_[r.key()];
    for (const auto& [offset, holder] : key.in_flight) {
      EXPECT_EQ(holder, stream) << "key " << r.key() << " in flight on two streams";
      EXPECT_LT(offset, r.offset()) << "key " << r.key() << " out of order on stream " << stream;
    }
    if (r.delivery_attempt() > 1) {
      EXPECT_TRUE(may_repeat_.erase({r.partition(), r.offset()}))
          << r.partition() << "@" << r.offset() << " delivered again without a cause";
    } else {
      EXPECT_TRUE(first_seen_.insert({r.partition(), r.offset()}).second);
      // First deliveries of a key come in offset order over the whole run.
      EXPECT_GT(r.offset(), key.last_first_delivery) << "key " << r.key();
      key.last_first_delivery = r.offset();
    }
    key.in_flight[r.offset()] = stream;
  }
  void Acked(const Record& r) {
    Key& key = keys_[r.key()];
    key.in_flight.erase(r.offset());
    acked_.insert({r.partition(), r.offset()});
  }
  // `stream` left holding these records: each may come once more.
  void Left(const std::vector<Record>& in_flight) {
    for (const Record& r : in_flight) {
      may_repeat_.insert({r.partition(), r.offset()});
      keys_[r.key()].in_flight.erase(r.offset());
    }
  }
  size_t acked() const { return acked_.size(); }

 private:
  struct Key {
    std::map<int64_t, uint64_t> in_flight;  // offset -> stream
    int64_t last_first_delivery = -1;
  };
  std::map<std::string, Key> keys_;
  std::set<std::pair<int32_t, int64_t>> first_seen_;
  std::set<std::pair<int32_t, int64_t>> may_repeat_;
  std::set<std::pair<int32_t, int64_t>> acked_;
};

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() : dispatcher_({Ordering::kKey, 100, 1 << 20}, metrics_) {}

  FakeStream& Join(uint64_t id, uint32_t max_in_flight = 50) {
    streams_[id] = std::make_unique<FakeStream>();
    dispatcher_.AddStream(id, streams_[id].get(), max_in_flight, now_);
    return *streams_[id];
  }

  void Leave(uint64_t id) {
    checker_.Left(streams_[id]->unacked);
    dispatcher_.RemoveStream(id);
    streams_.erase(id);
  }

  // Dispatches, records deliveries, then each stream acks a random part of what it holds.
  void Round(std::mt19937& rng, const std::set<uint64_t>& silent = {}) {
    std::map<uint64_t, size_t> before;
    for (auto& [id, stream] : streams_) before[id] = stream->unacked.size();
    Dispatch(dispatcher_);
    for (auto& [id, stream] : streams_) {
      for (size_t i = before[id]; i < stream->unacked.size(); ++i) {
        checker_.Delivered(id, stream->unacked[i]);
        share_[id]++;
        keys_[id][stream->unacked[i].key()]++;
      }
      if (silent.count(id) > 0) continue;
      std::shuffle(stream->unacked.begin(), stream->unacked.end(), rng);
      const size_t n = stream->unacked.size() - stream->unacked.size() / 3;
      for (size_t i = 0; i < n; ++i) {
        const Record& r = stream->unacked.back();
        ASSERT_TRUE(dispatcher_.Ack(id, r.delivery_id(), now_).has_value());
        checker_.Acked(r);
        stream->unacked.pop_back();
      }
    }
  }

  // Dispatches and sends the batches, as the Subscription does.
  void Dispatch(Dispatcher& dispatcher) {
    std::deque<Dispatcher::Outgoing> out;
    dispatcher.Dispatch(now_, out);
    for (Dispatcher::Outgoing& batch : out) batch.stream->Send(std::move(batch.records));
  }

  ConsumeMetrics metrics_;
  Dispatcher dispatcher_;
  absl::Time now_ = absl::UnixEpoch();
  std::map<uint64_t, std::unique_ptr<FakeStream>> streams_;
  OrderChecker checker_;
  std::map<uint64_t, int> share_;
  std::map<uint64_t, std::map<std::string, int>> keys_;  // stream -> key -> records delivered
};

TEST_F(DispatcherTest, FourStreamsKeepPerKeyOrderAndShareTheLoadEvenly) {
  constexpr int kRecords = 50000;
  for (uint64_t id = 1; id <= 4; ++id) Join(id);
  std::mt19937 rng(1);
  std::vector<Message> records = MakeRecords(kRecords, 1000);
  size_t next = 0;
  while (checker_.acked() < kRecords) {
    // Records arrive from Kafka in chunks while the apps work.
    for (int i = 0; i < 700 && next < records.size(); ++i) dispatcher_.Add(std::move(records[next++]));
    Round(rng);
    ASSERT_LT(metrics_.records_delivered.load(), 2 * kRecords) << "not converging";
  }
  EXPECT_EQ(metrics_.records_redelivered.load(), 0);
  for (const auto& [id, n] : share_) {
    EXPECT_NEAR(n, kRecords / 4, kRecords / 4 * 0.2) << "stream " << id;
  }
}

TEST_F(DispatcherTest, StreamsJoiningAndLeavingLoseNothingAndKeepOrder) {
  constexpr int kRecords = 30000;
  std::mt19937 rng(2);
  uint64_t next_id = 1;
  for (; next_id <= 3; ++next_id) Join(next_id);
  std::vector<Message> records = MakeRecords(kRecords, 500);
  size_t next = 0;
  int changes = 0;
  int round = 0;
  while (checker_.acked() < kRecords) {
    for (int i = 0; i < 400 && next < records.size(); ++i) dispatcher_.Add(std::move(records[next++]));
    Round(rng);
    if (++round % 5 == 0 && changes < 40) {
      ++changes;
      if (streams_.size() > 1 && rng() % 2 == 0) {
        auto it = streams_.begin();
        std::advance(it, rng() % streams_.size());
        Leave(it->first);
      } else {
        Join(next_id++);
      }
    }
    ASSERT_LT(round, 10000) << "not converging";
  }
  EXPECT_GE(changes, 20);
  EXPECT_EQ(dispatcher_.buffered(), 0u);
  EXPECT_EQ(dispatcher_.in_flight(), 0u);
}

TEST_F(DispatcherTest, RecordsWaitWithoutStreamsAndGoToTheFirstOne) {
  std::vector<Message> records = MakeRecords(10, 3);
  for (Message& m : records) dispatcher_.Add(std::move(m));
  EXPECT_EQ(dispatcher_.buffered(), 10u);
  FakeStream& stream = Join(1);
  Dispatch(dispatcher_);
  EXPECT_EQ(stream.unacked.size(), 10u);
  EXPECT_EQ(dispatcher_.buffered(), 0u);
}

TEST_F(DispatcherTest, LeavingStreamsRecordsGoFirstWithAHigherAttempt) {
  FakeStream& a = Join(1, /*max_in_flight=*/5);
  std::vector<Message> records = MakeRecords(20, 1);  // one key: strict order
  for (Message& m : records) dispatcher_.Add(std::move(m));
  Dispatch(dispatcher_);
  ASSERT_EQ(a.unacked.size(), 5u);
  ASSERT_TRUE(dispatcher_.Ack(1, a.unacked[0].delivery_id(), now_).has_value());
  FakeStream& b = Join(2, /*max_in_flight=*/100);
  Dispatch(dispatcher_);  // a takes one more (offset 5): in flight 1..5
  EXPECT_TRUE(b.unacked.empty()) << "the key moved while records were in flight on its owner";
  dispatcher_.RemoveStream(1);
  Dispatch(dispatcher_);
  ASSERT_EQ(b.unacked.size(), 19u);
  for (size_t i = 0; i < b.unacked.size(); ++i) {
    EXPECT_EQ(b.unacked[i].offset(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(b.unacked[i].delivery_attempt(), i < 5 ? 2u : 1u) << i;
  }
}

TEST_F(DispatcherTest, HandoffKeepsOrderWhenANackedRecordWaitsBehindOneInFlight) {
  FakeStream& a = Join(1, /*max_in_flight=*/2);
  for (Message& m : MakeRecords(6, 1)) dispatcher_.Add(std::move(m));
  Dispatch(dispatcher_);
  ASSERT_EQ(a.unacked.size(), 2u);  // offsets 0 and 1 in flight
  ASSERT_TRUE(dispatcher_.Nack(1, a.unacked[0].delivery_id(), now_));  // 0 queued, 1 in flight
  FakeStream& b = Join(2, /*max_in_flight=*/100);
  dispatcher_.RemoveStream(1);
  Dispatch(dispatcher_);
  ASSERT_EQ(b.unacked.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(b.unacked[i].offset(), i);
    EXPECT_EQ(b.unacked[i].delivery_attempt(), i < 2 ? 2u : 1u) << i;
  }
}

TEST_F(DispatcherTest, NacksComeBackBeforeLaterRecordsInOffsetOrder) {
  FakeStream& a = Join(1, /*max_in_flight=*/3);
  std::vector<Message> records = MakeRecords(6, 1);
  for (Message& m : records) dispatcher_.Add(std::move(m));
  Dispatch(dispatcher_);
  ASSERT_EQ(a.unacked.size(), 3u);  // offsets 0, 1, 2
  EXPECT_TRUE(dispatcher_.Nack(1, a.unacked[2].delivery_id(), now_));
  EXPECT_TRUE(dispatcher_.Nack(1, a.unacked[1].delivery_id(), now_));
  EXPECT_TRUE(dispatcher_.Ack(1, a.unacked[0].delivery_id(), now_).has_value());
  EXPECT_FALSE(dispatcher_.Nack(1, a.unacked[0].delivery_id(), now_)) << "acked: stale";
  a.unacked.clear();
  Dispatch(dispatcher_);
  ASSERT_EQ(a.unacked.size(), 3u);
  EXPECT_EQ(a.unacked[0].offset(), 1);
  EXPECT_EQ(a.unacked[0].delivery_attempt(), 2u);
  EXPECT_EQ(a.unacked[1].offset(), 2);
  EXPECT_EQ(a.unacked[2].offset(), 3);
  EXPECT_EQ(a.unacked[2].delivery_attempt(), 1u);
}

TEST_F(DispatcherTest, ASlowStreamHoldsBackOnlyItsOwnKeys) {
  for (uint64_t id = 1; id <= 3; ++id) Join(id, /*max_in_flight=*/20);
  std::mt19937 rng(3);
  constexpr int kKeys = 300;
  std::vector<Message> records = MakeRecords(6000, kKeys);
  std::map<std::string, int> per_key;
  for (Message& m : records) {
    per_key[*m.key]++;
    dispatcher_.Add(std::move(m));
  }
  // Stream 1 never acks; the others work through everything that is not stream 1's.
  for (int round = 0; round < 500; ++round) Round(rng, /*silent=*/{1});
  EXPECT_EQ(streams_[1]->unacked.size(), 20u);

  // Each key went to one stream. A key the others were given was never held back: all its
  // records reached them. What still waits is of keys the others were never given, stream 1's:
  // about a third of the keys, not more than half.
  size_t held_keys = 0;
  size_t held_records = 0;
  for (const auto& [key, total] : per_key) {
    const int to_others = keys_[2][key] + keys_[3][key];
    if (keys_[1].count(key) > 0) {
      EXPECT_EQ(to_others, 0) << key << " went to two streams";
    }
    if (to_others > 0) {
      EXPECT_EQ(to_others, total) << key << " is not stream 1's, yet some of it waits";
    } else {
      ++held_keys;
      held_records += total;
    }
  }
  EXPECT_LT(held_keys, kKeys / 2u);
  EXPECT_GT(held_keys, 0u);
  EXPECT_EQ(dispatcher_.buffered() + 20, held_records);
}

TEST_F(DispatcherTest, NoneOrderingSendsToTheLeastLoadedStream) {
  Dispatcher none({Ordering::kNone, 100, 1 << 20}, metrics_);
  FakeStream a;
  FakeStream b;
  none.AddStream(1, &a, 1000, now_);
  none.AddStream(2, &b, 1000, now_);
  for (Message& m : MakeRecords(100, 1)) none.Add(std::move(m));  // a single key
  Dispatch(none);
  EXPECT_EQ(a.unacked.size(), 50u);
  EXPECT_EQ(b.unacked.size(), 50u);
}

TEST_F(DispatcherTest, InactiveMeansHoldingRecordsWithoutAckSinceTheCutoff) {
  FakeStream& a = Join(1);
  Join(2);
  for (Message& m : MakeRecords(100, 10)) dispatcher_.Add(std::move(m));
  Dispatch(dispatcher_);
  now_ += absl::Seconds(10);
  ASSERT_TRUE(dispatcher_.Ack(1, a.unacked[0].delivery_id(), now_).has_value());
  const std::vector<uint64_t> inactive = dispatcher_.InactiveSince(now_ - absl::Seconds(5));
  EXPECT_EQ(inactive, std::vector<uint64_t>{2});
  FakeStream idle;
  dispatcher_.AddStream(3, &idle, 10, now_ - absl::Hours(1));
  EXPECT_EQ(dispatcher_.InactiveSince(now_ + absl::Seconds(1)), std::vector<uint64_t>({1, 2}))
      << "a stream holding nothing is never inactive";
}

TEST_F(DispatcherTest, ANackedRecordGoesOutAgainBeforeLaterOnesWithOneInFlight) {
  FakeStream& a = Join(1, /*max_in_flight=*/1);
  for (Message& m : MakeRecords(5, 1)) dispatcher_.Add(std::move(m));
  std::vector<std::pair<int64_t, uint32_t>> order;
  int nacks = 0;
  while (order.size() < 7) {
    Dispatch(dispatcher_);
    ASSERT_EQ(a.unacked.size(), 1u);
    Record r = a.unacked[0];
    a.unacked.clear();
    order.emplace_back(r.offset(), r.delivery_attempt());
    if (r.offset() == 1 && nacks < 2) {
      ++nacks;
      ASSERT_TRUE(dispatcher_.Nack(1, r.delivery_id(), now_));
    } else {
      ASSERT_TRUE(dispatcher_.Ack(1, r.delivery_id(), now_).has_value());
    }
  }
  EXPECT_EQ(order, (std::vector<std::pair<int64_t, uint32_t>>{
                       {0, 1}, {1, 1}, {1, 2}, {1, 3}, {2, 1}, {3, 1}, {4, 1}}));
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
