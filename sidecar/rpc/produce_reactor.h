#ifndef KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_REACTOR_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_REACTOR_H_

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "broker/producer.h"
#include "sidecar/common/metrics.h"
#include "sidecar/rpc/grpc_status.h"
#include "sidecar/rpc/produce_request.h"
#include "sidecar/rpc/produce_stream_registry.h"
#include "sidecar/rpc/stream_reactor.h"

namespace kafka_sidecar::sidecar {

// What the two produce streams (ProduceStream and ProduceBatchStream) share: the window of
// `max_pending` records, draining at shutdown, the order of reading and handing over, and when
// and how the stream ends. A subclass says what one request weighs and hands it to the
// producer, keeps the answers as Kafka gives them, and says which to write next.
//
// Reading: the next request is read only while fewer than `max_pending` records are pending
// (accepted, their answers not yet written), so gRPC flow control pushes back on the app; a
// request is never split, so one may take the count past the window. Requests that arrive
// while draining are answered UNAVAILABLE without reaching Kafka.
//
// The end: once the app half-closed, or the sidecar drains, or a write failed (the app is gone),
// the stream finishes as soon as every accepted request is answered and written (or, after a
// failed write, answered): OK, INVALID_ARGUMENT when a request's bytes did not parse,
// UNAVAILABLE when draining, CANCELLED when the app is gone.
//
// The reactor deletes itself in OnDone, which gRPC calls only after Finish; Finish is called
// only once every accepted record was answered, so no delivery report outlives it.
template <typename Request, typename Response>
class ProduceReactor : public StreamReactor<Request, Response>, public DrainableStream {
 public:
  // Stops reading; ends the stream with UNAVAILABLE once every accepted record is answered.
  void Drain() final {
    {
      absl::MutexLock lock(&mu_);
      draining_ = true;
    }
    this->Pump();
  }

 protected:
  using Actions = typename StreamReactor<Request, Response>::Actions;
  using StreamReactor<Request, Response>::mu_;

  // `noun` names a request in the status of a stream that ends early ("record", "batch").
  // `metrics.pending_records` counts this stream's pending records too; `trace` is the call's
  // trace context, added to its records. The subclass's constructor ends with Pump(), which
  // issues the first read.
  ProduceReactor(broker::Producer& producer, int max_pending, ProduceMetrics& metrics,
                 ProduceStreamRegistry& registry, TraceContext trace, const char* noun)
      : producer_(producer),
        metrics_(metrics),
        trace_(std::move(trace)),
        max_pending_(max_pending),
        registry_(registry),
        noun_(noun),
        send_now_policy_(max_pending) {
    const bool draining = registry_.Add(this);
    absl::MutexLock lock(&mu_);
    draining_ = draining;
  }

  // With mu_ held: counts `request` as pending (it is handed over next) and returns its number
  // of records.
  virtual int Accept(const Request& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // Without mu_: hands an accepted request's records to the producer, or with `draining`
  // answers them UNAVAILABLE; `send_now` when the producer should send at once.
  virtual void HandOver(const Request& request, bool draining, bool send_now)
      ABSL_LOCKS_EXCLUDED(mu_) = 0;
  // With mu_ held: the records counted against the window.
  virtual int pending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // With mu_ held: true when every accepted request is answered and no answer waits to be
  // written (the write in flight aside).
  virtual bool settled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // With mu_ held: takes the next answer to write (the subclass keeps it unchanged until
  // OnWriteDone), or null when none is ready; `more` when another is ready after it.
  virtual const Response* TakeNextWrite(bool& more) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;

  broker::Producer& producer_;
  ProduceMetrics& metrics_;
  const TraceContext trace_;

  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed: the app is gone

 private:
  void OnRead(const Request* request, const absl::Status& end) final {
    bool accepted = false;
    bool draining = false;
    bool send_now = false;
    {
      absl::MutexLock lock(&mu_);
      if (request == nullptr) {
        reads_done_ = true;
        unparsed_ = end;
      } else if (!finished_) {
        // Counted before the producer sees it, so the stream cannot finish under it.
        accepted = true;
        draining = draining_;
        const int records = Accept(*request);
        send_now = send_now_policy_.Accepted(records, pending());
      }
      if (!accepted) read_in_flight_ = false;
    }
    if (accepted) {
      HandOver(*request, draining, send_now);
      // Only now may the request be read into again.
      absl::MutexLock lock(&mu_);
      read_in_flight_ = false;
    }
    this->Pump();
  }

  void OnDone() final {
    registry_.Remove(this);
    delete this;
  }

  Actions NextActions() final ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Actions actions;
    if (finished_) return actions;
    if (!write_in_flight_ && !broken_) {
      actions.write = TakeNextWrite(actions.write_buffer_hint);
      write_in_flight_ = actions.write != nullptr;
    }
    if (!read_in_flight_ && !reads_done_ && !draining_ && !broken_ && pending() < max_pending_) {
      read_in_flight_ = true;
      actions.read = true;
    }
    if (settled() && !write_in_flight_ && (reads_done_ || draining_ || broken_)) {
      finished_ = true;
      actions.finish = true;
      actions.finish_status =
          ProduceStreamEnd(broken_, unparsed_, draining_ && !reads_done_, noun_);
    }
    return actions;
  }

  const int max_pending_;
  ProduceStreamRegistry& registry_;
  const char* const noun_;

  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;  // until OnRead has handed it on
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;      // the app half-closed, or the call broke
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status unparsed_ ABSL_GUARDED_BY(mu_);  // a request's bytes did not parse
  SendNowPolicy send_now_policy_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_PRODUCE_REACTOR_H_
