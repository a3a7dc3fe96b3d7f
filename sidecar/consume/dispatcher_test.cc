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
#include "proto/kafka_sidecar.pb.h"

namespace kafka_sidecar::sidecar {
namespace {

using broker::Message;
using broker::TopicPartition;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using kafka_sidecar::v1::Record;

constexpr int kPartitions = 6;

// An app stream that keeps what it was sent until the test acks it.
class FakeStream final : public ConsumerStream {
 public:
  void Send(WireResponse response) override {
    kafka_sidecar::v1::ConsumeResponse parsed;
    const absl::string_view bytes = response.bytes();
    EXPECT_TRUE(parsed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    for (const Record& record : parsed.records().records()) unacked.push_back(record);
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

  // Nacks for a plain retry; true when it is one.
  bool Nack(uint64_t stream, uint64_t delivery_id) {
    return dispatcher_.Nack(stream, delivery_id, /*dead_letter=*/false, now_) ==
           Dispatcher::NackOutcome::kRetry;
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
  ASSERT_TRUE(Nack(1, a.unacked[0].delivery_id()));  // 0 queued, 1 in flight
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
  EXPECT_TRUE(Nack(1, a.unacked[2].delivery_id()));
  EXPECT_TRUE(Nack(1, a.unacked[1].delivery_id()));
  EXPECT_TRUE(dispatcher_.Ack(1, a.unacked[0].delivery_id(), now_).has_value());
  EXPECT_FALSE(Nack(1, a.unacked[0].delivery_id())) << "acked: stale";
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
      ASSERT_TRUE(Nack(1, r.delivery_id()));
    } else {
      ASSERT_TRUE(dispatcher_.Ack(1, r.delivery_id(), now_).has_value());
    }
  }
  EXPECT_EQ(order, (std::vector<std::pair<int64_t, uint32_t>>{
                       {0, 1}, {1, 1}, {1, 2}, {1, 3}, {2, 1}, {3, 1}, {4, 1}}));
}

// Retries with backoff and dead letters (the subscription's DeliveryPolicy).
class DispatcherPolicyTest : public ::testing::Test {
 protected:
  void Start(Ordering ordering, DeliveryPolicy policy) {
    dispatcher_ = std::make_unique<Dispatcher>(
        Dispatcher::Options{ordering, 100, 1 << 20, std::move(policy)}, metrics_);
  }
  FakeStream& Join(uint64_t id, uint32_t max_in_flight = 10) {
    streams_[id] = std::make_unique<FakeStream>();
    dispatcher_->AddStream(id, streams_[id].get(), max_in_flight, now_);
    return *streams_[id];
  }
  void Add(int32_t partition, int64_t offset, const std::string& key) {
    Message m;
    m.tp = {"t", partition};
    m.offset = offset;
    m.key = key;
    m.value = absl::StrCat(key, "@", offset);
    dispatcher_->Add(std::move(m));
  }
  Dispatcher::NackOutcome Nack(uint64_t stream, uint64_t delivery_id, bool dead_letter = false,
                               uint64_t* ticket = nullptr) {
    return dispatcher_->Nack(stream, delivery_id, dead_letter, now_, ticket);
  }
  // The delivery id of the last record `stream` got with `value`.
  uint64_t IdOf(const std::vector<Record>& sent, const std::string& value) {
    for (auto it = sent.rbegin(); it != sent.rend(); ++it) {
      if (it->value() == value) return it->delivery_id();
    }
    ADD_FAILURE() << value << " was not sent";
    return 0;
  }
  // Dispatches at `now_`, keeps the records `stream` got (with their ids) in `sent`, and returns
  // them as "key@offset/attempt".
  std::vector<std::string> DispatchKeeping(FakeStream& stream, std::vector<Record>& sent) {
    std::deque<Dispatcher::Outgoing> out;
    dispatcher_->Dispatch(now_, out);
    for (Dispatcher::Outgoing& batch : out) batch.stream->Send(std::move(batch.records));
    std::vector<std::string> got;
    for (const Record& r : stream.unacked) {
      got.push_back(absl::StrCat(r.value(), "/", r.delivery_attempt()));
      sent.push_back(r);
    }
    stream.unacked.clear();
    return got;
  }

  ConsumeMetrics metrics_;
  std::unique_ptr<Dispatcher> dispatcher_;
  absl::Time now_ = absl::UnixEpoch();
  std::map<uint64_t, std::unique_ptr<FakeStream>> streams_;
};

DeliveryPolicy Backoff(absl::Duration min, absl::Duration max) {
  DeliveryPolicy policy;
  policy.min_backoff = min;
  policy.max_backoff = max;
  return policy;
}

TEST_F(DispatcherPolicyTest, ANackedRecordWaitsItsBackoffAndHoldsBackOnlyItsOwnKey) {
  Start(Ordering::kKey, Backoff(absl::Milliseconds(300), absl::Seconds(10)));
  FakeStream& a = Join(1);
  std::vector<Record> sent;
  Add(0, 0, "a");
  Add(1, 0, "b");
  ASSERT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/1", "b@0/1"));
  const absl::Time nacked = now_;
  ASSERT_EQ(Nack(1, IdOf(sent, "a@0")), Dispatcher::NackOutcome::kRetry);
  EXPECT_EQ(dispatcher_->waiting_retry(), 1u);
  EXPECT_EQ(dispatcher_->in_flight(), 1u) << "a waiting record holds no in-flight slot";
  EXPECT_EQ(dispatcher_->NextRetry(), nacked + absl::Milliseconds(300));
  Add(0, 1, "a");
  Add(1, 1, "b");
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("b@1/1")) << "a's later record waits";
  now_ = nacked + absl::Milliseconds(299);
  EXPECT_THAT(DispatchKeeping(a, sent), IsEmpty());
  now_ = nacked + absl::Milliseconds(300);
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/2")) << "a@1 waits until it is acked";
  EXPECT_EQ(dispatcher_->waiting_retry(), 0u);

  // The second nack waits twice as long.
  const absl::Time again = now_;
  ASSERT_EQ(Nack(1, IdOf(sent, "a@0")), Dispatcher::NackOutcome::kRetry);
  now_ = again + absl::Milliseconds(599);
  EXPECT_THAT(DispatchKeeping(a, sent), IsEmpty());
  now_ = again + absl::Milliseconds(600);
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/3"));
  Add(1, 2, "b");
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("b@2/1"));
  ASSERT_TRUE(dispatcher_->Ack(1, IdOf(sent, "a@0"), now_).has_value());
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("a@1/1")) << "acked: the key goes on";
}

TEST_F(DispatcherPolicyTest, ARecordGivenUpIsHeldUntilWrittenAndThenCountsAsAcked) {
  DeliveryPolicy policy;
  policy.dead_letter_topic = "t.dlq";
  policy.max_delivery_attempts = 2;
  Start(Ordering::kKey, policy);
  FakeStream& a = Join(1);
  std::vector<Record> sent;
  Add(0, 0, "a");
  ASSERT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/1"));
  ASSERT_EQ(Nack(1, IdOf(sent, "a@0")), Dispatcher::NackOutcome::kRetry);
  ASSERT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/2"));
  uint64_t ticket = 0;
  ASSERT_EQ(Nack(1, IdOf(sent, "a@0"), false, &ticket), Dispatcher::NackOutcome::kDeadLetter);
  uint32_t attempts = 0;
  const Message* held = dispatcher_->DeadLetter(ticket, &attempts);
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->offset, 0);
  EXPECT_EQ(attempts, 2u);
  EXPECT_EQ(dispatcher_->dead_lettering(), 1u);

  Add(0, 1, "a");
  Add(1, 0, "b");
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("b@0/1")) << "a waits for its dead letter";
  std::optional<broker::PartitionOffset> done = dispatcher_->DeadLettered(ticket);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->tp, (TopicPartition{"t", 0}));
  EXPECT_EQ(done->offset, 0);
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("a@1/1"));
  EXPECT_FALSE(dispatcher_->DeadLettered(ticket).has_value()) << "once only";

  // Asked for by the app: at once, on any attempt.
  ASSERT_EQ(Nack(1, IdOf(sent, "a@1"), /*dead_letter=*/true, &ticket),
            Dispatcher::NackOutcome::kDeadLetter);
}

TEST_F(DispatcherPolicyTest, WithoutADeadLetterTopicAskingForItIsAPlainNack) {
  Start(Ordering::kKey, DeliveryPolicy{});
  FakeStream& a = Join(1);
  std::vector<Record> sent;
  Add(0, 0, "a");
  ASSERT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/1"));
  ASSERT_EQ(Nack(1, IdOf(sent, "a@0"), /*dead_letter=*/true), Dispatcher::NackOutcome::kRetry);
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/2")) << "no backoff: at once";
}

TEST_F(DispatcherPolicyTest, WithoutOrderingOnlyTheNackedRecordWaits) {
  Start(Ordering::kNone, Backoff(absl::Seconds(10), absl::Seconds(10)));
  FakeStream& a = Join(1);
  std::vector<Record> sent;
  Add(0, 0, "a");
  ASSERT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/1"));
  ASSERT_EQ(Nack(1, IdOf(sent, "a@0")), Dispatcher::NackOutcome::kRetry);
  Add(0, 1, "a");
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("a@1/1"));
  now_ += absl::Seconds(10);
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/2"));
}

TEST_F(DispatcherPolicyTest, AWaitingRouteGoesToTheNextOwnerWhenItsStreamLeaves) {
  Start(Ordering::kKey, Backoff(absl::Seconds(1), absl::Seconds(1)));
  FakeStream& a = Join(1);
  std::vector<Record> sent;
  Add(0, 0, "a");
  Add(0, 1, "a");
  ASSERT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/1", "a@1/1"));
  ASSERT_EQ(Nack(1, IdOf(sent, "a@0")), Dispatcher::NackOutcome::kRetry);
  FakeStream& b = Join(2);
  dispatcher_->RemoveStream(1);  // a@1 was in flight: it goes back, behind a@0
  EXPECT_THAT(DispatchKeeping(b, sent), IsEmpty()) << "a@0's backoff still runs";
  now_ += absl::Seconds(1);
  EXPECT_THAT(DispatchKeeping(b, sent), ElementsAre("a@0/2"));
  ASSERT_TRUE(dispatcher_->Ack(2, IdOf(sent, "a@0"), now_).has_value());
  EXPECT_THAT(DispatchKeeping(b, sent), ElementsAre("a@1/2"));
}

TEST_F(DispatcherPolicyTest, ARevokedPartitionDropsWaitingAndHeldRecordsAndItsAttemptsCountOn) {
  DeliveryPolicy policy = Backoff(absl::Seconds(1), absl::Seconds(1));
  policy.dead_letter_topic = "t.dlq";
  Start(Ordering::kKey, policy);
  FakeStream& a = Join(1);
  std::vector<Record> sent;
  Add(0, 0, "a");
  Add(0, 1, "b");
  ASSERT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/1", "b@1/1"));
  ASSERT_EQ(Nack(1, IdOf(sent, "a@0")), Dispatcher::NackOutcome::kRetry);
  uint64_t ticket = 0;
  ASSERT_EQ(Nack(1, IdOf(sent, "b@1"), true, &ticket), Dispatcher::NackOutcome::kDeadLetter);
  EXPECT_EQ(dispatcher_->DropPartitions(absl::flat_hash_set<TopicPartition>{TopicPartition{"t", 0}}), 2u);
  EXPECT_EQ(dispatcher_->waiting_retry(), 0u);
  EXPECT_EQ(dispatcher_->dead_lettering(), 0u);
  EXPECT_EQ(dispatcher_->buffered(), 0u);
  EXPECT_EQ(dispatcher_->DeadLetter(ticket, nullptr), nullptr);
  EXPECT_FALSE(dispatcher_->DeadLettered(ticket).has_value()) << "its write no longer counts";

  // The partition comes back: Kafka delivers both again, and their attempts count on.
  Add(0, 0, "a");
  Add(0, 1, "b");
  Add(0, 2, "c");
  EXPECT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/2", "b@1/2", "c@2/1"));
}

TEST_F(DispatcherPolicyTest, AttemptsOfRevokedRecordsAreRememberedUpToTheBound) {
  dispatcher_ = std::make_unique<Dispatcher>(
      Dispatcher::Options{Ordering::kKey, 100, 1 << 20, DeliveryPolicy{},
                          /*max_remembered_attempts=*/1},
      metrics_);
  FakeStream& a = Join(1);
  std::vector<Record> sent;
  Add(0, 0, "a");
  Add(0, 1, "b");
  ASSERT_THAT(DispatchKeeping(a, sent), ElementsAre("a@0/1", "b@1/1"));
  dispatcher_->DropPartitions(absl::flat_hash_set<TopicPartition>{TopicPartition{"t", 0}});
  Add(0, 0, "a");
  Add(0, 1, "b");
  // Which of the two is remembered depends on the order they were dropped in (in-flight
  // records are kept by delivery id, unordered): one is, the other is past the bound.
  const std::vector<std::string> again = DispatchKeeping(a, sent);
  EXPECT_THAT(again, ::testing::AnyOf(ElementsAre("a@0/2", "b@1/1"),
                                      ElementsAre("a@0/1", "b@1/2")));
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
