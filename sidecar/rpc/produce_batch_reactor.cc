#include "sidecar/rpc/produce_batch_reactor.h"

#include <google/protobuf/arena.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "sidecar/rpc/produce_request.h"

namespace kafka_sidecar::sidecar {

using kafka_sidecar::v1::ProduceBatch;
using kafka_sidecar::v1::ProduceBatchResult;
using kafka_sidecar::v1::ProduceRequest;

namespace {

// Arena bytes a result needs per record (the response, its topic, its slot in the repeated
// field), so that the first block usually holds the whole result.
constexpr size_t kArenaBytesPerRecord = 128;
constexpr size_t kMaxArenaBlock = size_t{1} << 20;

google::protobuf::ArenaOptions ArenaOptionsFor(int records) {
  google::protobuf::ArenaOptions options;
  options.start_block_size =
      std::clamp(static_cast<size_t>(records) * kArenaBytesPerRecord + 256, size_t{256},
                 kMaxArenaBlock);
  options.max_block_size = kMaxArenaBlock;
  return options;
}

}  // namespace

// One accepted batch. Its result is made up front with every response's request_id and topic;
// each answer fills its own response (answers of different records may come concurrently:
// each touches only its own message, and the arena is thread-safe). A countdown of the answers
// still due, plus one held by the reactor while it hands the batch over, says when the result
// is complete: whoever brings it to zero gives the batch to the reactor.
class ProduceBatchReactor::Batch final : public broker::BatchDeliverySink {
 public:
  Batch(ProduceBatchReactor& reactor, const ProduceBatch& request)
      : reactor_(reactor),
        size_(request.records_size()),
        arena_(ArenaOptionsFor(size_)),
        result_(google::protobuf::Arena::CreateMessage<ProduceBatchResult>(&arena_)) {
    result_->set_batch_id(request.batch_id());
    result_->mutable_results()->Reserve(size_);
    for (const ProduceRequest& record : request.records()) {
      kafka_sidecar::v1::ProduceResponse* response = result_->add_results();
      response->set_request_id(record.request_id());
      response->set_topic(record.topic());
    }
  }

  int size() const { return size_; }
  const ProduceBatchResult& result() const { return *result_; }

  // Answers record `index` of the batch without the producer.
  void Refuse(int index, const absl::Status& status) {
    FillProduceResponse(broker::DeliveryReport{status}, result_->mutable_results(index));
  }

  // Record `index` of the batch is the next one handed to the producer. Positions are kept
  // only once a record before it was refused: until then the two indexes are the same.
  void HandOver(int index) {
    if (positions_.empty() && index != handed_over_) {
      positions_.reserve(size_);
      for (int i = 0; i < handed_over_; ++i) positions_.push_back(i);
    }
    if (!positions_.empty()) positions_.push_back(index);
    ++handed_over_;
  }

  // `count` records go to the producer: their answers are due, plus the reactor's hold.
  void Expect(int count) { remaining_.store(count + 1, std::memory_order_relaxed); }
  // The reactor has handed the batch over.
  void Release() { Done(); }

  void OnDelivery(size_t index, const broker::DeliveryReport& report) override {
    const int position = positions_.empty() ? static_cast<int>(index) : positions_[index];
    FillProduceResponse(report, result_->mutable_results(position));
    Done();
  }

 private:
  void Done() {
    // The last one hands the batch on and touches it no more.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) reactor_.Complete(this);
  }

  ProduceBatchReactor& reactor_;
  const int size_;
  google::protobuf::Arena arena_;
  ProduceBatchResult* const result_;  // on arena_
  // Index in the producer's span -> index in the batch; empty when they are the same. Written
  // before the records go to the producer, only read afterwards.
  std::vector<int> positions_;
  int handed_over_ = 0;
  std::atomic<int> remaining_{1};
};

ProduceBatchReactor::ProduceBatchReactor(broker::Producer& producer, int max_pending,
                                         ProduceMetrics& metrics,
                                         ProduceStreamRegistry& registry, TraceContext trace)
    : ProduceReactor(producer, max_pending, metrics, registry, std::move(trace), "batch") {
  Pump();
}

ProduceBatchReactor::~ProduceBatchReactor() = default;

int ProduceBatchReactor::Accept(const ProduceBatch& request) {
  ++open_batches_;
  AddPending(request.records_size());
  return request.records_size();
}

void ProduceBatchReactor::HandOver(const ProduceBatch& request, bool draining, bool send_now) {
  auto* batch = new Batch(*this, request);
  views_.clear();
  header_views_.clear();
  size_t headers = 0;
  for (const ProduceRequest& record : request.records()) {
    headers += record.headers_size() + trace_.header_count();
  }
  header_views_.reserve(headers);  // the views borrow from it: no reallocation below
  for (int i = 0; i < request.records_size(); ++i) {
    const ProduceRequest& record = request.records(i);
    absl::Status refusal =
        draining ? absl::UnavailableError(
                       "the sidecar is shutting down; the record was not produced")
                 : ValidateProduceRequest(record);
    if (!refusal.ok()) {
      batch->Refuse(i, refusal);
      continue;
    }
    batch->HandOver(i);
    views_.push_back(ToRecordView(record, header_views_, trace_));
  }
  batch->Expect(static_cast<int>(views_.size()));
  if (!views_.empty()) {
    producer_.ProduceBatch(views_, *batch);
    if (send_now) producer_.SendNow();
  }
  batch->Release();
}

void ProduceBatchReactor::OnWriteDone(bool ok) {
  std::unique_ptr<Batch> written;
  std::deque<std::unique_ptr<Batch>> dropped;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    written = std::move(writing_);
    AddPending(-written->size());
    if (!ok) {
      // The app is gone; what Kafka still answers has nowhere to go.
      broken_ = true;
      for (const std::unique_ptr<Batch>& batch : ready_) AddPending(-batch->size());
      dropped.swap(ready_);
    }
  }
  // Freed outside the lock: an arena may hold many blocks.
  written.reset();
  dropped.clear();
  Pump();
}

void ProduceBatchReactor::Complete(Batch* batch) {
  std::unique_ptr<Batch> dropped;
  bool pump = false;
  {
    // The state change and the claim to pump happen under one lock: this may run on a producer
    // thread, and once the lock is gone only the pumper may touch the reactor.
    absl::MutexLock lock(&mu_);
    --open_batches_;
    if (broken_) {
      AddPending(-batch->size());
      dropped.reset(batch);
    } else {
      ready_.emplace_back(batch);
    }
    pump = ClaimPump();
  }
  dropped.reset();
  if (pump) PumpClaimed();
}

const ProduceBatchResult* ProduceBatchReactor::TakeNextWrite(bool& more) {
  if (ready_.empty()) return nullptr;
  writing_ = std::move(ready_.front());
  ready_.pop_front();
  // More results are ready: let gRPC coalesce this one with the next.
  more = !ready_.empty();
  return &writing_->result();
}

}  // namespace kafka_sidecar::sidecar
