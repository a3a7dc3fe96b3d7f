#include "broker/rdkafka_consumer.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/rdkafka_status.h"

namespace kafka_sidecar::broker {
namespace {

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

PartitionListPtr ToList(const std::vector<TopicPartition>& partitions) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const TopicPartition& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  return list;
}

PartitionListPtr ToList(const std::vector<PartitionOffset>& offsets) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const PartitionOffset& o : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), o.tp.topic.c_str(), o.tp.partition)->offset =
        o.offset;
  }
  return list;
}

std::vector<TopicPartition> FromList(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> partitions;
  for (int i = 0; i < list->cnt; ++i) {
    partitions.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return partitions;
}

// The first per-partition error of a commit result, or the request's own error.
absl::Status CommitStatus(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t* list) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return RdKafkaStatus(err, "offset commit");
  }
  for (int i = 0; list != nullptr && i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return RdKafkaStatus(list->elems[i].err, absl::StrCat("offset commit of ", list->elems[i].topic,
                                                            "/", list->elems[i].partition));
    }
  }
  return absl::OkStatus();
}

void OnCommitted(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list,
                 void* opaque) {
  auto* done = static_cast<std::pair<CommitCallback, std::vector<PartitionOffset>>*>(opaque);
  done->first(CommitStatus(err, list), done->second);
  delete done;
}

std::string Describe(const std::vector<TopicPartition>& partitions) {
  return absl::StrJoin(partitions, ",", [](std::string* out, const TopicPartition& tp) {
    absl::StrAppend(out, tp.topic, "/", tp.partition);
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> RdKafkaConsumer::Create(
    RdKafkaConsumerOptions options) {
  KafkaSettings settings = {
      {"bootstrap.servers", options.bootstrap_servers},
      {"group.id", options.group},
      {"client.id", "kafka-sidecar"},
      // The sidecar commits exactly what the app acked, itself.
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", "cooperative-sticky"},
      // Bound librdkafka's prefetch: part of the sidecar's memory budget. A fetch response may
      // overshoot the queue limits by up to fetch.max.bytes per broker.
      {"queued.max.messages.kbytes", absl::StrCat(options.max_prefetch_kbytes)},
      {"fetch.max.bytes", "4194304"},
      {"queued.min.messages", absl::StrCat(options.max_prefetch_records)},
  };
  settings.insert(settings.end(), options.settings.begin(), options.settings.end());
  absl::StatusOr<RdKafkaConfPtr> conf = NewRdKafkaConf(settings);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<RdKafkaConsumer> consumer(new RdKafkaConsumer(options.group));
  consumer->fetch_stop_records_ = static_cast<size_t>(std::max(1, options.max_prefetch_records));
  for (const auto& [name, value] : settings) {
    if (name == "group.instance.id") consumer->static_member_ = !value.empty();
    if (name == "queued.min.messages") {
      consumer->fetch_stop_records_ = static_cast<size_t>(std::max(1, std::atoi(value.c_str())));
    }
    if (name == "partition.assignment.strategy") {
      consumer->cooperative_ = value == "cooperative-sticky";
      consumer->strategy_ = value;
    }
  }
  rd_kafka_conf_set_rebalance_cb(conf->get(), &RdKafkaConsumer::OnRebalance);
  rd_kafka_conf_set_opaque(conf->get(), consumer.get());
  absl::StatusOr<RdKafkaPtr> rk = NewRdKafka(RD_KAFKA_CONSUMER, *std::move(conf));
  if (!rk.ok()) return rk.status();
  consumer->rk_ = *std::move(rk);
  // Route every event to the consumer queue, which Poll serves.
  rd_kafka_poll_set_consumer(consumer->rk_.get());
  consumer->events_ = rd_kafka_queue_get_consumer(consumer->rk_.get());
  consumer->records_ = rd_kafka_queue_new(consumer->rk_.get());
  rd_kafka_queue_cb_event_enable(consumer->events_, &RdKafkaConsumer::OnEvent,
                                 consumer->records_);
  return consumer;
}

RdKafkaConsumer::~RdKafkaConsumer() {
  if (rk_ == nullptr) return;
  if (events_ != nullptr) {
    rd_kafka_queue_cb_event_enable(events_, nullptr, nullptr);
    rd_kafka_queue_destroy(events_);
  }
  if (records_ != nullptr) rd_kafka_queue_destroy(records_);
  if (doomed_ || (!closed_ && BetweenJoinAndSync())) {
    LOG(WARNING) << "[" << group_ << "] this Kafka client is not destroyed: librdkafka "
                 << rd_kafka_version_str() << " would abort the process destroying a "
                 << "cooperative-sticky member whose SyncGroup Kafka had not answered "
                 << "(librdkafka issue 4312, fixed in 2.3.0); it stays idle until the sidecar "
                 << "exits";
    (void)rk_.release();
    return;
  }
  // Leaving the group is Close's job, bounded by its timeout. A consumer that was never
  // closed, or could not leave in time, must not try again here, unbounded: the group drops it
  // after its session timeout.
  rd_kafka_destroy_flags(rk_.release(), left_group_ ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

void RdKafkaConsumer::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<RdKafkaConsumer*>(opaque);
  // librdkafka names no protocol once the client is terminating (Close); then the configured
  // strategy says.
  const char* protocol = rd_kafka_rebalance_protocol(rk);
  const bool cooperative =
      protocol != nullptr ? std::strcmp(protocol, "COOPERATIVE") == 0 : self->cooperative_;
  const std::vector<TopicPartition> list = FromList(partitions);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->synced_ = true;
    if (self->closed_ || protocol == nullptr) {
      // A rebalance that was under way as Close began. Taking the partitions now could only
      // wait on a client that is going away (an assign waits for librdkafka's group thread
      // without a bound): they stay with the group, which hands them on once this member is
      // gone.
      LOG(INFO) << "[" << self->group_ << "] leaving: not taking " << Describe(list);
      return;
    }
    LOG(INFO) << "[" << self->group_ << "] assigned " << Describe(list);
    for (const TopicPartition& tp : list) self->sought_.erase(tp);  // fetching starts anew
    rd_kafka_error_t* error = nullptr;
    if (cooperative) {
      error = rd_kafka_incremental_assign(rk, partitions);
    } else {
      rd_kafka_assign(rk, partitions);
    }
    if (error != nullptr) {
      LOG(ERROR) << "[" << self->group_ << "] assign: " << rd_kafka_error_string(error);
      rd_kafka_error_destroy(error);
    }
    for (const TopicPartition& tp : list) {
      rd_kafka_queue_t* queue = rd_kafka_queue_get_partition(rk, tp.topic.c_str(), tp.partition);
      if (queue == nullptr) continue;
      rd_kafka_queue_forward(queue, self->records_);
      rd_kafka_queue_destroy(queue);
    }
    if (self->listener_ != nullptr) self->listener_->OnAssigned(list);
    return;
  }
  const bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
  LOG(INFO) << "[" << self->group_ << "] " << (lost ? "lost " : "revoked ") << Describe(list);
  if (self->listener_ != nullptr) self->listener_->OnRevoked(list, lost);
  for (const TopicPartition& tp : list) self->sought_.erase(tp);
  if (cooperative) {
    rd_kafka_error_t* error = rd_kafka_incremental_unassign(rk, partitions);
    if (error != nullptr) rd_kafka_error_destroy(error);
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

absl::Status RdKafkaConsumer::Subscribe(const std::vector<std::string>& topics,
                                        RebalanceListener* listener) {
  listener_ = listener;
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const std::string& topic : topics) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  return RdKafkaStatus(rd_kafka_subscribe(rk_.get(), list.get()),
                       absl::StrCat("subscribing group '", group_, "'"));
}

absl::Status RdKafkaConsumer::Poll(absl::Duration timeout, size_t max, std::vector<Message>& out) {
  const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  absl::Status status = absl::OkStatus();
  auto take = [this, &status, &out](rd_kafka_message_t* message) {
    if (absl::Status s = Take(message, out); !s.ok() && status.ok()) status = s;
  };
  // Events first (rebalance callbacks run inside); wait on them only when no record is wanted.
  for (int wait_ms = max == 0 ? timeout_ms : 0;; wait_ms = 0) {
    rd_kafka_message_t* event = rd_kafka_consumer_poll(rk_.get(), wait_ms);
    if (event == nullptr) break;
    take(event);
  }
  if (max == 0 || !status.ok()) return status;
  if (batch_.size() < max) batch_.resize(max);
  // librdkafka 2.0.2 stops fetching every partition once records_ holds queued.min.messages
  // (its check on a partition's queue follows the forwarding here), and its broker threads
  // look again only when an op reaches them or a second has passed: a backlog whose fetch
  // responses come faster than one poll takes them then moves a second at a time. The queue
  // seen now is at most one poll's take below what a broker thread saw, so this catches
  // every stop; once the queue is empty, fetching is restarted (below).
  if (rd_kafka_queue_length(records_) + last_taken_ >= fetch_stop_records_) {
    fetching_may_have_stopped_ = true;
  }
  // rd_kafka_consume_batch_queue with a timeout waits until the array is full, however long
  // that takes at low traffic: take what is there, and when that is nothing, wait for one
  // record (an event or Wake cuts the wait short: see OnEvent) and then take the rest.
  ssize_t n = rd_kafka_consume_batch_queue(records_, 0, batch_.data(), max);
  if (n == 0 && timeout_ms > 0) {
    if (rd_kafka_message_t* first = rd_kafka_consume_queue(records_, timeout_ms)) {
      batch_[0] = first;
      n = 1 + std::max<ssize_t>(
                  rd_kafka_consume_batch_queue(records_, 0, batch_.data() + 1, max - 1), 0);
    }
  }
  n = std::max<ssize_t>(n, 0);
  last_taken_ = static_cast<size_t>(n);
  for (ssize_t i = 0; i < n; ++i) take(batch_[i]);
  if (fetching_may_have_stopped_ && rd_kafka_queue_length(records_) == 0) {
    // Nothing queued is lost by the seek now.
    fetching_may_have_stopped_ = false;
    rd_kafka_topic_partition_list_t* assigned = nullptr;
    if (rd_kafka_assignment(rk_.get(), &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      PartitionListPtr owned(assigned);
      SeekToPositions(owned.get(), "restarting fetching");
    }
  }
  return status;
}

void RdKafkaConsumer::Wake() {
  rd_kafka_queue_yield(records_);
  rd_kafka_queue_yield(events_);
}

void RdKafkaConsumer::OnEvent(rd_kafka_t*, void* opaque) {
  // An event reached the empty event queue while Poll may be waiting for records: let it
  // serve the event now. Runs on a librdkafka thread; yielding is all it may do.
  rd_kafka_queue_yield(static_cast<rd_kafka_queue_t*>(opaque));
}

size_t RdKafkaConsumer::Prefetched() { return rd_kafka_queue_length(records_); }

absl::Status RdKafkaConsumer::Take(rd_kafka_message_t* message, std::vector<Message>& out) {
  std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> owned(
      message, &rd_kafka_message_destroy);
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return absl::OkStatus();
    if (message->err == RD_KAFKA_RESP_ERR__FATAL) {
      // The client is dead for good (a static member fenced by another with its id).
      char reason[512];
      const rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk_.get(), reason, sizeof(reason));
      return absl::FailedPreconditionError(absl::StrCat(
          "group '", group_, "': ", reason,
          cause == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID
              ? " (another member uses the same group.instance.id: give each pod its own "
                "--group_instance_id, e.g. the pod name)"
              : ""));
    }
    if (message->err == RD_KAFKA_RESP_ERR_INCONSISTENT_GROUP_PROTOCOL) {
      // Kafka refused the JoinGroup: the group's other members offer no strategy in common
      // with this one. librdkafka 2.0.2 hands this to the app as a consumer error event on the
      // consumer queue, served here by rd_kafka_consumer_poll (rd_kafka_cgrp_handle_JoinGroup:
      // rd_kafka_err_action counts every error it does not list as permanent, and a permanent
      // JoinGroup error becomes rd_kafka_consumer_err "JoinGroup failed: ..."; such errors
      // reach a consumer poll as messages, never the error callback). Then it joins again
      // (every 2 to 3 s against Kafka 3.9 here: the join interval plus a second's backoff),
      // refused each time: nothing ends by itself.
      return GroupProtocolMismatchError(
          RdKafkaStatus(message->err, absl::StrCat("joining group '", group_,
                                                   "' offering partition.assignment.strategy ",
                                                   strategy_)),
          strategy_);
    }
    const char* topic = message->rkt != nullptr ? rd_kafka_topic_name(message->rkt) : nullptr;
    return RdKafkaStatus(message->err, topic != nullptr ? absl::StrCat("topic '", topic, "'")
                                                        : absl::StrCat("group '", group_, "'"));
  }
  Message& m = out.emplace_back();
  m.tp.topic = rd_kafka_topic_name(message->rkt);
  m.tp.partition = message->partition;
  m.offset = message->offset;
  if (message->key != nullptr) {
    m.key.emplace(static_cast<const char*>(message->key), message->key_len);
  }
  if (message->payload != nullptr) {
    m.value.assign(static_cast<const char*>(message->payload), message->len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      m.headers.push_back(
          {name, value == nullptr ? "" : std::string(static_cast<const char*>(value), size)});
    }
  }
  m.timestamp_ms = rd_kafka_message_timestamp(message, nullptr);
  return absl::OkStatus();
}

void RdKafkaConsumer::Pause(const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  rd_kafka_pause_partitions(rk_.get(), ToList(partitions).get());
  paused_.insert(partitions.begin(), partitions.end());
}

void RdKafkaConsumer::Resume(const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  for (const TopicPartition& tp : partitions) paused_.erase(tp);
  PartitionListPtr list = ToList(partitions);
  rd_kafka_resume_partitions(rk_.get(), list.get());
  // librdkafka 2.0.2 decides to fetch a resumed partition only when its broker thread next
  // looks, up to a second later: a backlog then moves at a fraction of its pace. A seek to
  // where the app stands sends that thread an op, so it fetches at once.
  SeekToPositions(list.get(), "seek on resume");
}

void RdKafkaConsumer::SeekToPositions(rd_kafka_topic_partition_list_t* partitions,
                                      const char* why) {
  if (rd_kafka_position(rk_.get(), partitions) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  PartitionListPtr seek(rd_kafka_topic_partition_list_new(partitions->cnt));
  for (int i = 0; i < partitions->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = partitions->elems[i];
    TopicPartition tp{p.topic, p.partition};
    if (paused_.contains(tp)) continue;
    // No position: nothing of the partition was taken since the last seek (whose offset is
    // still where it stands), or since it was assigned (it starts from its committed offset
    // anyway). Skipping the first kind would leave its fetching stopped for up to a second.
    int64_t offset = p.offset;
    if (offset < 0) {
      auto it = sought_.find(tp);
      if (it == sought_.end()) continue;
      offset = it->second;
    }
    rd_kafka_topic_partition_list_add(seek.get(), p.topic, p.partition)->offset = offset;
    sought_.insert_or_assign(std::move(tp), offset);
  }
  if (seek->cnt == 0) return;
  if (rd_kafka_error_t* error = rd_kafka_seek_partitions(rk_.get(), seek.get(), /*timeout_ms=*/0)) {
    LOG(WARNING) << "[" << group_ << "] " << why << ": " << rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
  }
}

void RdKafkaConsumer::CommitAsync(const std::vector<PartitionOffset>& offsets,
                                  CommitCallback done) {
  auto* opaque = new std::pair<CommitCallback, std::vector<PartitionOffset>>(std::move(done), offsets);
  // The result is an event on the consumer queue, served by Poll.
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(rk_.get(), ToList(offsets).get(), events_, &OnCommitted, opaque);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    opaque->first(RdKafkaStatus(err, "offset commit"), opaque->second);
    delete opaque;
  }
}

absl::Status RdKafkaConsumer::CommitSync(const std::vector<PartitionOffset>& offsets) {
  if (offsets.empty()) return absl::OkStatus();
  PartitionListPtr list = ToList(offsets);
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), /*async=*/0);
  return CommitStatus(err, list.get());
}

absl::Status RdKafkaConsumer::CheckReachable(absl::Duration timeout) {
  return broker::CheckReachable(rk_.get(), timeout);
}

std::vector<int64_t> RdKafkaConsumer::HighWatermarks(
    const std::vector<TopicPartition>& partitions) {
  std::vector<int64_t> high;
  high.reserve(partitions.size());
  for (const TopicPartition& tp : partitions) {
    int64_t low = -1;
    int64_t hw = -1;
    if (rd_kafka_get_watermark_offsets(rk_.get(), tp.topic.c_str(), tp.partition, &low, &hw) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      hw = -1;
    }
    high.push_back(std::max<int64_t>(hw, -1));  // librdkafka says -1001 before any fetch
  }
  return high;
}

void RdKafkaConsumer::Unsubscribe(absl::Time deadline) {
  // librdkafka's close never sends a static member's LeaveGroup (KIP-345); an unsubscribe
  // does, once the revocation it starts is done. The member id is gone when it was sent.
  if (rd_kafka_resp_err_t err = rd_kafka_unsubscribe(rk_.get())) {
    LOG(WARNING) << "[" << group_ << "] unsubscribing: " << rd_kafka_err2str(err);
    return;
  }
  auto member_id = [this] {
    char* id = rd_kafka_memberid(rk_.get());
    std::string copy = id != nullptr ? id : "";
    if (id != nullptr) rd_kafka_mem_free(rk_.get(), id);
    return copy;
  };
  while (!member_id().empty() && absl::Now() < deadline) {
    // Serves the revocation (rebalance callback) and commit results.
    rd_kafka_message_t* event = rd_kafka_consumer_poll(rk_.get(), 10);
    if (event != nullptr) rd_kafka_message_destroy(event);
  }
}

bool RdKafkaConsumer::BetweenJoinAndSync() {
  if (synced_) return false;
  // The protocol of the assignor the group chose in its JoinGroup answer; NONE before one.
  const char* protocol = rd_kafka_rebalance_protocol(rk_.get());
  return protocol != nullptr && std::strcmp(protocol, "COOPERATIVE") == 0;
}

void RdKafkaConsumer::Close(absl::Duration timeout, Departure departure) {
  if (closed_ || rk_ == nullptr) return;
  closed_ = true;
  const absl::Time deadline = absl::Now() + timeout;
  // librdkafka 2.0.2 makes the cooperative-sticky assignor's state only when the SyncGroup is
  // answered, and aborts the process destroying a member that has the JoinGroup answer but not
  // that one (librdkafka issue 4312, fixed in 2.3.0): a member leaving in that window (a stream
  // that ends during its first rebalance) first waits for its assignment, which OnRebalance
  // declines now that closed_ is set.
  if (!synced_ && BetweenJoinAndSync()) {
    while (!synced_ && absl::Now() < deadline) {
      rd_kafka_message_t* event = rd_kafka_consumer_poll(rk_.get(), 10);
      if (event != nullptr) rd_kafka_message_destroy(event);
    }
    doomed_ = !synced_;
  }
  if (departure == Departure::kLeave && static_member_) Unsubscribe(deadline);
  if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(rk_.get(), events_)) {
    LOG(WARNING) << "[" << group_ << "] closing: " << rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
  }
  while (!rd_kafka_consumer_closed(rk_.get())) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      LOG(WARNING) << "[" << group_ << "] could not leave the group within " << timeout
                   << "; the group will drop this member after its session timeout";
      listener_ = nullptr;
      return;
    }
    // Serves the revocation (rebalance callback) and commit results.
    rd_kafka_message_t* event = rd_kafka_consumer_poll(
        rk_.get(), static_cast<int>(absl::ToInt64Milliseconds(std::min(left, absl::Milliseconds(100)))));
    if (event != nullptr) rd_kafka_message_destroy(event);
  }
  left_group_ = true;
  listener_ = nullptr;
}

}  // namespace kafka_sidecar::broker
