#include "testing/kafka_test_client.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"

namespace kafka_sidecar::testing {
namespace {

struct Deleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};

using RebalanceCallback = void (*)(rd_kafka_t*, rd_kafka_resp_err_t,
                                   rd_kafka_topic_partition_list_t*, void*);

absl::StatusOr<std::unique_ptr<rd_kafka_t, Deleter>> NewClient(
    rd_kafka_type_t type, const std::vector<std::pair<std::string, std::string>>& settings,
    void (*dr)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr,
    RebalanceCallback rebalance = nullptr, void* opaque = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [name, value] : settings) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(error);
    }
  }
  if (dr != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
  if (rebalance != nullptr) rd_kafka_conf_set_rebalance_cb(conf, rebalance);
  if (opaque != nullptr) rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_t* rk = rd_kafka_new(type, conf, error, sizeof(error));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(error);
  }
  return std::unique_ptr<rd_kafka_t, Deleter>(rk);
}

struct DirectState {
  std::atomic<int64_t> delivered{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int> first_error{0};
};

void CountDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  auto* state = static_cast<DirectState*>(message->_private);
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    state->failed++;
    state->first_error = message->err;
  }
  state->delivered++;
}

// A consumer assigned every partition of `topic` from the beginning.
absl::StatusOr<std::unique_ptr<rd_kafka_t, Deleter>> AssignFromBeginning(
    const std::string& bootstrap, const std::string& topic, absl::Time deadline) {
  auto consumer = NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                                {"group.id", "kafka-sidecar-test-reader"},
                                                {"enable.auto.commit", "false"},
                                                {"fetch.wait.max.ms", "10"}});
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = consumer->get();
  int partitions = 0;
  // The topic may be new: wait until the cluster lists its partitions.
  while (partitions == 0 && absl::Now() < deadline) {
    const rd_kafka_metadata_t* metadata = nullptr;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    if (rd_kafka_metadata(rk, 0, rkt, &metadata, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        partitions = metadata->topics[0].partition_cnt;
      }
      rd_kafka_metadata_destroy(metadata);
    }
    rd_kafka_topic_destroy(rkt);
  }
  if (partitions == 0) return absl::NotFoundError(absl::StrCat("topic ", topic, " not found"));
  std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter> assignment(
      rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, assignment.get());
  return consumer;
}

}  // namespace

absl::StatusOr<std::vector<ConsumedRecord>> ReadTopic(const std::string& bootstrap,
                                                      const std::string& topic, size_t count,
                                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  auto consumer = AssignFromBeginning(bootstrap, topic, deadline);
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = consumer->get();
  std::vector<ConsumedRecord> records;
  while (records.size() < count && absl::Now() < deadline) {
    std::unique_ptr<rd_kafka_message_t, Deleter> message(rd_kafka_consumer_poll(rk, 100));
    if (message == nullptr || message->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    ConsumedRecord& record = records.emplace_back();
    record.partition = message->partition;
    record.offset = message->offset;
    if (message->key != nullptr) {
      record.key = std::string(static_cast<const char*>(message->key), message->key_len);
    }
    if (message->payload != nullptr) {
      record.value.assign(static_cast<const char*>(message->payload), message->len);
    }
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(message.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                         RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        record.headers.emplace_back(
            name, value == nullptr ? "" : std::string(static_cast<const char*>(value), size));
      }
    }
  }
  rd_kafka_consumer_close(rk);
  if (records.size() < count) {
    return absl::DeadlineExceededError(absl::StrCat("read ", records.size(), " of ", count,
                                                    " records of ", topic, " in ", absl::FormatDuration(timeout)));
  }
  return records;
}

absl::StatusOr<absl::Duration> ProduceDirect(const std::string& bootstrap,
                                             const std::string& topic, int64_t count,
                                             size_t value_size, int32_t partition) {
  DirectState state;
  auto producer = NewClient(RD_KAFKA_PRODUCER,
                            {{"bootstrap.servers", bootstrap},
                             {"enable.idempotence", "true"},
                             {"acks", "all"},
                             {"queue.buffering.max.messages", "1000000"},
                             // Bounds the wait for delivery reports below: each record gets
                             // its report, success or failure, within this.
                             {"message.timeout.ms", "120000"}},
                            &CountDelivery);
  if (!producer.ok()) return producer.status();
  rd_kafka_t* rk = producer->get();
  const std::string value(value_size, 'v');
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < count; ++i) {
    const std::string key = absl::StrCat("key-", i % 1000);
    while (true) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_PARTITION(partition >= 0 ? partition : RD_KAFKA_PARTITION_UA),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_OPAQUE(&state), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return absl::InternalError(rd_kafka_err2str(err));
      rd_kafka_poll(rk, 10);
    }
    rd_kafka_poll(rk, 0);
  }
  while (state.delivered < count) rd_kafka_poll(rk, 100);  // ends within message.timeout.ms
  const absl::Duration elapsed = absl::Now() - start;
  if (state.failed > 0) {
    return absl::InternalError(
        absl::StrCat(state.failed.load(), " records failed: ",
                     rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(state.first_error.load()))));
  }
  return elapsed;
}

absl::StatusOr<absl::Duration> ConsumeDirect(const std::string& bootstrap,
                                             const std::string& topic, int64_t count) {
  auto consumer = AssignFromBeginning(bootstrap, topic, absl::Now() + absl::Seconds(30));
  if (!consumer.ok()) return consumer.status();
  int64_t received = 0;
  absl::Time first;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (received < count && absl::Now() < deadline) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer->get(), 100);
    if (message == nullptr) continue;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (received++ == 0) first = absl::Now();
    }
    rd_kafka_message_destroy(message);
  }
  const absl::Time last = absl::Now();
  rd_kafka_consumer_close(consumer->get());
  if (received < count) return absl::DeadlineExceededError("not all records arrived");
  return last - first;
}

absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& bootstrap,
                                                const std::string& topic, int partitions) {
  auto client = NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                              {"group.id", "kafka-sidecar-test-counter"}});
  if (!client.ok()) return client.status();
  std::vector<int64_t> ends;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(client->get(), topic.c_str(), p, &low, &high, 10000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("watermarks of ", topic, "/", p, ": ",
                                                 rd_kafka_err2str(err)));
    }
    ends.push_back(high);
  }
  return ends;
}

absl::StatusOr<int64_t> CountRecords(const std::string& bootstrap, const std::string& topic,
                                     int partitions) {
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(bootstrap, topic, partitions);
  if (!ends.ok()) return ends.status();
  int64_t total = 0;
  for (int64_t end : *ends) total += end;
  return total;
}

absl::StatusOr<std::vector<int64_t>> CommittedOffsets(const std::string& bootstrap,
                                                      const std::string& group,
                                                      const std::string& topic, int partitions) {
  auto client =
      NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", group}});
  if (!client.ok()) return client.status();
  std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter> list(
      rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  }
  rd_kafka_resp_err_t err = rd_kafka_committed(client->get(), list.get(), 10000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("committed offsets: ", rd_kafka_err2str(err)));
  }
  std::vector<int64_t> offsets(partitions, -1);
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].offset >= 0) offsets[list->elems[i].partition] = list->elems[i].offset;
  }
  return offsets;
}

absl::StatusOr<int> BrokerCount(const std::string& bootstrap, absl::Duration timeout) {
  // Quiet: while a cluster starts, every failed connection would be logged.
  auto client =
      NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap}, {"log_level", "0"}});
  if (!client.ok()) return client.status();
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(
      client->get(), 0, nullptr, &metadata, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return absl::UnavailableError(rd_kafka_err2str(err));
  const int brokers = metadata->broker_cnt;
  rd_kafka_metadata_destroy(metadata);
  return brokers;
}

absl::StatusOr<GroupDescription> DescribeGroup(const std::string& bootstrap,
                                               const std::string& group, absl::Duration timeout) {
  auto client = NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap}});
  if (!client.ok()) return client.status();
  const rd_kafka_group_list* list = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_list_groups(client->get(), group.c_str(), &list,
                           static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return absl::UnavailableError(rd_kafka_err2str(err));
  absl::StatusOr<GroupDescription> description =
      absl::NotFoundError(absl::StrCat("group ", group, " not described"));
  if (list->group_cnt == 1 && list->groups[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const rd_kafka_group_info& info = list->groups[0];
    description = GroupDescription{info.state != nullptr ? info.state : "",
                                   info.protocol != nullptr ? info.protocol : "",
                                   info.member_cnt};
  }
  rd_kafka_group_list_destroy(list);
  return description;
}

absl::Status CreateTopic(const std::string& bootstrap, const std::string& topic, int partitions,
                         int replicas,
                         const std::vector<std::pair<std::string, std::string>>& config) {
  auto client = NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap}});
  if (!client.ok()) return client.status();
  rd_kafka_t* rk = client->get();
  char error[512];
  rd_kafka_NewTopic_t* request =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replicas, error, sizeof(error));
  if (request == nullptr) return absl::InvalidArgumentError(error);
  for (const auto& [name, value] : config) {
    rd_kafka_NewTopic_set_config(request, name.c_str(), value.c_str());
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &request, 1, nullptr, queue);
  rd_kafka_NewTopic_destroy(request);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 30000);
  absl::Status status = absl::OkStatus();
  if (event == nullptr) {
    status = absl::DeadlineExceededError("CreateTopics got no answer in 30 s");
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::InternalError(rd_kafka_event_error_string(event));
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    for (size_t i = 0; i < count; ++i) {
      if (rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = absl::InternalError(absl::StrCat("creating ", topic, ": ",
                                                  rd_kafka_topic_result_error_string(results[i])));
      }
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  if (!status.ok()) return status;

  // Created is not yet led: wait until every partition has a leader.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    const rd_kafka_metadata_t* metadata = nullptr;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    bool led = false;
    if (rd_kafka_metadata(rk, 0, rkt, &metadata, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const rd_kafka_metadata_topic_t& t = metadata->topics[0];
      led = metadata->topic_cnt == 1 && t.err == RD_KAFKA_RESP_ERR_NO_ERROR &&
            t.partition_cnt == partitions;
      for (int i = 0; led && i < t.partition_cnt; ++i) led = t.partitions[i].leader >= 0;
      rd_kafka_metadata_destroy(metadata);
    }
    rd_kafka_topic_destroy(rkt);
    if (led) return absl::OkStatus();
    rd_kafka_poll(rk, 50);  // between looks, within the deadline
  }
  return absl::DeadlineExceededError(absl::StrCat(topic, " has partitions without a leader"));
}

namespace {

// Counts the group's assignments and revocations, and applies each as librdkafka would
// without a callback.
void CountRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                    rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* seen = static_cast<GroupMember::Rebalances*>(opaque);
  seen->last_unix_nanos.store(absl::ToUnixNanos(absl::Now()));
  seen->count.fetch_add(1);
  const bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative) {
      rd_kafka_error_t* error = rd_kafka_incremental_assign(rk, partitions);
      if (error != nullptr) rd_kafka_error_destroy(error);
    } else {
      rd_kafka_assign(rk, partitions);
    }
  } else if (cooperative) {
    rd_kafka_error_t* error = rd_kafka_incremental_unassign(rk, partitions);
    if (error != nullptr) rd_kafka_error_destroy(error);
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<GroupMember>> GroupMember::Join(
    const std::string& bootstrap, const std::string& group, const std::string& topic,
    const std::vector<std::pair<std::string, std::string>>& settings) {
  std::vector<std::pair<std::string, std::string>> all = {
      {"bootstrap.servers", bootstrap},
      {"group.id", group},
      {"enable.auto.commit", "false"},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"session.timeout.ms", "6000"},
      {"heartbeat.interval.ms", "500"},
      {"fetch.wait.max.ms", "10"},
  };
  all.insert(all.end(), settings.begin(), settings.end());
  auto rebalances = std::make_unique<GroupMember::Rebalances>();
  auto consumer = NewClient(RD_KAFKA_CONSUMER, all, nullptr, &CountRebalance, rebalances.get());
  if (!consumer.ok()) return consumer.status();
  rd_kafka_poll_set_consumer(consumer->get());
  std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter> topics(
      rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer->get(), topics.get())) {
    return absl::InternalError(rd_kafka_err2str(err));
  }
  return std::unique_ptr<GroupMember>(new GroupMember(consumer->release(), std::move(rebalances)));
}

GroupMember::~GroupMember() {
  Close();
  rd_kafka_destroy(static_cast<rd_kafka_t*>(rk_));
}

void GroupMember::Close() {
  auto* rk = static_cast<rd_kafka_t*>(rk_);
  if (!rd_kafka_consumer_closed(rk)) rd_kafka_consumer_close(rk);
}

std::vector<int32_t> GroupMember::Assignment() {
  rd_kafka_topic_partition_list_t* list = nullptr;
  std::vector<int32_t> partitions;
  if (rd_kafka_assignment(static_cast<rd_kafka_t*>(rk_), &list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return partitions;
  }
  for (int i = 0; i < list->cnt; ++i) partitions.push_back(list->elems[i].partition);
  rd_kafka_topic_partition_list_destroy(list);
  std::sort(partitions.begin(), partitions.end());
  return partitions;
}

std::vector<int32_t> GroupMember::WaitForAssignment(size_t count, absl::Duration timeout) {
  auto* rk = static_cast<rd_kafka_t*>(rk_);
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<int32_t> partitions;
  // Polls at least once: a rebalance that arrived since the last call is served even when the
  // count already holds (a member that leaves it unserved misses the next round, and the mock
  // then drops it from the group).
  do {
    // Rebalances happen inside the poll; records are dropped.
    if (rd_kafka_message_t* message = rd_kafka_consumer_poll(rk, 50)) {
      rd_kafka_message_destroy(message);
    }
    partitions = Assignment();
  } while (partitions.size() != count && absl::Now() < deadline);
  return partitions;
}

std::optional<std::string> GroupMember::WaitForError(absl::Duration timeout) {
  auto* rk = static_cast<rd_kafka_t*>(rk_);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk, 50);
    if (message == nullptr) continue;
    const rd_kafka_resp_err_t err = message->err;
    rd_kafka_message_destroy(message);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      return std::string(rd_kafka_err2name(err));
    }
  }
  return std::nullopt;
}

}  // namespace kafka_sidecar::testing
