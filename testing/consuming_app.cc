#include "testing/consuming_app.h"

#include <algorithm>
#include <set>

namespace kafka_sidecar::testing {

using kafka_sidecar::v1::Record;
using kafka_sidecar::v1::RecordBatch;

void DeliveryLog::Add(std::vector<Delivery> deliveries) {
  absl::MutexLock lock(&mu_);
  for (Delivery& d : deliveries) {
    index_[{d.app, d.delivery_id}] = deliveries_.size();
    deliveries_.push_back(std::move(d));
  }
}

void DeliveryLog::MarkAcked(const std::string& app, const std::vector<uint64_t>& delivery_ids,
                            absl::Time at) {
  absl::MutexLock lock(&mu_);
  for (uint64_t id : delivery_ids) {
    auto it = index_.find({app, id});
    if (it != index_.end()) deliveries_[it->second].acked = at;
  }
}

bool DeliveryLog::WaitUntil(const std::function<bool(const std::vector<Delivery>&)>& done,
                            absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto holds = [this, &done]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(deliveries_); };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

std::vector<Delivery> DeliveryLog::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return deliveries_;
}

std::vector<std::pair<int32_t, int64_t>> Positions(const std::vector<Delivery>& deliveries) {
  std::vector<std::pair<int32_t, int64_t>> positions;
  positions.reserve(deliveries.size());
  for (const Delivery& d : deliveries) positions.emplace_back(d.partition, d.offset);
  return positions;
}

size_t DistinctRecords(const std::vector<Delivery>& deliveries) {
  std::vector<std::pair<int32_t, int64_t>> positions = Positions(deliveries);
  return std::set<std::pair<int32_t, int64_t>>(positions.begin(), positions.end()).size();
}

ConsumingApp::ConsumingApp(std::string name, kafka_sidecar::v1::KafkaSidecar::Stub& stub,
                           const std::string& group, const std::vector<std::string>& topics,
                           uint32_t max_in_flight, DeliveryLog& log, absl::Duration deadline)
    : name_(std::move(name)), log_(log), client_(stub, deadline) {
  subscribed_ = client_.Subscribe(group, topics, max_in_flight);
  if (subscribed_) reader_ = std::thread([this] { Read(); });
}

ConsumingApp::~ConsumingApp() {
  client_.Cancel();
  if (reader_.joinable()) reader_.join();
}

void ConsumingApp::Read() {
  while (std::optional<RecordBatch> batch = client_.Next()) {
    std::vector<Delivery> deliveries;
    std::vector<uint64_t> ids;
    const absl::Time now = absl::Now();
    for (const Record& r : batch->records()) {
      deliveries.push_back({name_, r.partition(), r.offset(), r.key(), r.delivery_attempt(),
                            r.delivery_id(), now});
      ids.push_back(r.delivery_id());
    }
    // Logged and answered under one lock: whoever sees them in the log and then half-closes
    // (Finish) comes after the ack.
    absl::MutexLock lock(&mu_);
    log_.Add(std::move(deliveries));
    if (holding_) {
      held_.insert(held_.end(), ids.begin(), ids.end());
    } else {
      AckLocked(std::move(ids));
    }
  }
  status_ = client_.AwaitEnd();
}

void ConsumingApp::AckLocked(std::vector<uint64_t> ids) {
  if (ids.empty() || !client_.Ack(ids)) return;
  log_.MarkAcked(name_, ids, absl::Now());
}

void ConsumingApp::Hold() {
  absl::MutexLock lock(&mu_);
  holding_ = true;
}

void ConsumingApp::Release() {
  absl::MutexLock lock(&mu_);
  holding_ = false;
  AckLocked(std::move(held_));
  held_.clear();
}

size_t ConsumingApp::unacked() {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

grpc::Status ConsumingApp::Finish() {
  {
    absl::MutexLock lock(&mu_);
    client_.CloseWrites();
  }
  return AwaitEnd();
}

grpc::Status ConsumingApp::AwaitEnd() {
  if (reader_.joinable()) reader_.join();
  return status_;
}

}  // namespace kafka_sidecar::testing
