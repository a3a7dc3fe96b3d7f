#ifndef KAFKA_SIDECAR_TESTING_FAKE_SERVER_STREAM_H_
#define KAFKA_SIDECAR_TESTING_FAKE_SERVER_STREAM_H_

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kafka_sidecar::testing {

// One bidirectional call of gRPC's callback API, without gRPC: a reactor bound to it issues its
// reads, writes and Finish here, and the test completes them as gRPC would (a read with a
// request or with the client's half-close, a write as sent or as failed, the call's end with
// OnDone), on the test's thread. So a reactor's logic runs in microseconds, with its reactions in
// the order the test picks.
//
// Thread-safe: a reactor may issue operations from its own threads (a delivery report
// answering on the producer's thread writes from there); the Await* calls wait for them with a
// deadline. Reactions are never run with the fake's lock held, as gRPC runs them.
class FakeServerStream final
    : public grpc::ServerCallbackReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  using Reactor = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

  // Binds `reactor`: what it asked for before (a reactor usually reads in its constructor)
  // is issued here now.
  explicit FakeServerStream(Reactor* reactor) : reactor_(reactor) { BindReactor(reactor); }
  // Ends the call if the test did not (the reactor may delete itself in OnDone).
  ~FakeServerStream() override {
    if (!done_) End();
  }

  // Completes the read in flight with `request` (CHECKs that one is).
  template <typename Request>
  void Deliver(const Request& request) {
    grpc::ByteBuffer bytes;
    bool own;
    grpc::SerializationTraits<Request>::Serialize(request, &bytes, &own);
    CompleteRead(&bytes);
  }
  // Completes the read in flight with these bytes, whatever they are.
  void DeliverBytes(const std::string& bytes) {
    grpc::Slice slice(bytes);
    const grpc::ByteBuffer buffer(&slice, 1);
    CompleteRead(&buffer);
  }
  // Completes the read in flight with "no more requests": the client half-closed.
  void HalfClose() { CompleteRead(nullptr); }

  // True when a read is in flight (the reactor wants the next request).
  bool reading() {
    absl::MutexLock lock(&mu_);
    return read_into_ != nullptr;
  }
  // Waits until a read is in flight; false after `timeout`.
  bool AwaitRead(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(this, &FakeServerStream::ReadWanted), timeout);
  }

  // The write in flight, parsed as a `Response`; nullopt when none is.
  template <typename Response>
  std::optional<Response> writing() {
    absl::MutexLock lock(&mu_);
    if (!write_.has_value()) return std::nullopt;
    return Parse<Response>(*write_);
  }
  // Waits until a write is in flight and returns it parsed; nullopt after `timeout`.
  template <typename Response>
  std::optional<Response> AwaitWrite(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(this, &FakeServerStream::WriteWanted), timeout)) {
      return std::nullopt;
    }
    return Parse<Response>(*write_);
  }
  // Completes the write in flight: sent, or (`ok` false) failed because the client is gone.
  void CompleteWrite(bool ok = true) {
    {
      absl::MutexLock lock(&mu_);
      CHECK(write_.has_value()) << "no write is in flight";
      write_.reset();
    }
    reactor_->OnWriteDone(ok);
  }
  // Waits for the write in flight, completes it, and returns it parsed; nullopt after
  // `timeout`.
  template <typename Response>
  std::optional<Response> NextResponse(absl::Duration timeout = absl::Seconds(10)) {
    std::optional<Response> response = AwaitWrite<Response>(timeout);
    if (response.has_value()) CompleteWrite();
    return response;
  }

  // The status the reactor finished the call with; nullopt until it has.
  std::optional<grpc::Status> status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  // Waits until the reactor finishes the call; nullopt after `timeout`.
  std::optional<grpc::Status> AwaitFinish(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(this, &FakeServerStream::Finished), timeout)) {
      return std::nullopt;
    }
    return status_;
  }

  // Ends the call as gRPC does once it is over: a read still in flight fails (the call is
  // gone), then OnDone, after which the reactor may be deleted. A write in flight must have been
  // completed first.
  void End() {
    bool reading;
    {
      absl::MutexLock lock(&mu_);
      CHECK(!write_.has_value()) << "complete the write in flight before ending the call";
      reading = read_into_ != nullptr;
    }
    if (reading) CompleteRead(nullptr);
    done_ = true;
    reactor_->OnDone();
  }

  // ServerCallbackReaderWriter: what the reactor issues.
  void Finish(grpc::Status s) override {
    absl::MutexLock lock(&mu_);
    CHECK(!status_.has_value()) << "Finish was called twice";
    status_ = std::move(s);
  }
  void SendInitialMetadata() override {}
  void Read(grpc::ByteBuffer* req) override {
    absl::MutexLock lock(&mu_);
    CHECK(read_into_ == nullptr) << "a second read while one is in flight";
    read_into_ = req;
  }
  void Write(const grpc::ByteBuffer* resp, grpc::WriteOptions) override {
    absl::MutexLock lock(&mu_);
    CHECK(!write_.has_value()) << "a second write while one is in flight";
    write_ = *resp;
  }
  void WriteAndFinish(const grpc::ByteBuffer* resp, grpc::WriteOptions options,
                      grpc::Status s) override {
    Write(resp, options);
    Finish(std::move(s));
  }

 private:
  grpc::internal::ServerReactor* reactor() override { return reactor_; }
  void CallOnDone() override {}

  // Fills the read in flight with `bytes` (or fails it, with none) and runs OnReadDone.
  void CompleteRead(const grpc::ByteBuffer* bytes) {
    {
      absl::MutexLock lock(&mu_);
      CHECK(read_into_ != nullptr) << "no read is in flight";
      if (bytes != nullptr) *read_into_ = *bytes;
      read_into_ = nullptr;
    }
    reactor_->OnReadDone(bytes != nullptr);
  }

  template <typename Response>
  static Response Parse(grpc::ByteBuffer bytes) {
    Response response;
    CHECK(grpc::SerializationTraits<Response>::Deserialize(&bytes, &response).ok())
        << "the reactor wrote bytes that are not a " << Response::descriptor()->full_name();
    return response;
  }

  bool ReadWanted() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return read_into_ != nullptr; }
  bool WriteWanted() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return write_.has_value(); }
  bool Finished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return status_.has_value(); }

  Reactor* const reactor_;
  bool done_ = false;  // End has run
  absl::Mutex mu_;
  grpc::ByteBuffer* read_into_ ABSL_GUARDED_BY(mu_) = nullptr;  // the read in flight
  std::optional<grpc::ByteBuffer> write_ ABSL_GUARDED_BY(mu_);  // the write in flight
  std::optional<grpc::Status> status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_FAKE_SERVER_STREAM_H_
