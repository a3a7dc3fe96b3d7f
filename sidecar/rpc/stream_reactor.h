#ifndef KAFKA_SIDECAR_SIDECAR_RPC_STREAM_REACTOR_H_
#define KAFKA_SIDECAR_SIDECAR_RPC_STREAM_REACTOR_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace kafka_sidecar::sidecar {

// Parses a request that came as bytes: INVALID_ARGUMENT when they are not a `Request`.
template <typename Request>
absl::Status ParseRequest(grpc::ByteBuffer& bytes, Request& request) {
  grpc::Status parsed = grpc::SerializationTraits<Request>::Deserialize(&bytes, &request);
  if (parsed.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("the request's bytes are not a ",
                                                 Request::descriptor()->full_name(), " (",
                                                 parsed.error_message(), ")"));
}

// Serializes `response` into `bytes`, replacing what they held.
template <typename Response>
void SerializeResponse(const Response& response, grpc::ByteBuffer& bytes) {
  bytes.Clear();  // gRPC's serializer writes only into an empty buffer
  bool own_buffer;
  grpc::SerializationTraits<Response>::Serialize(response, &bytes, &own_buffer);
}

// What every bidirectional stream of the service shares, on gRPC's callback API.
//
// Requests come as bytes and are parsed here: bytes that are not a `Request` end the requests
// with INVALID_ARGUMENT (gRPC's own parsing would report them as the client half-closing, and
// the stream would end OK with no answer). Responses are serialized here.
//
// The pump: every gRPC operation (read, write, finish) is issued by Pump, which one thread at
// a time runs, outside mu_ (gRPC may run a reaction inline), so that the decision to read,
// write or finish and the call that does it never interleave with another thread's. The
// subclass keeps its state under mu_ and says in NextActions what the state calls for; after
// any change of state it calls Pump (or, holding mu_, ClaimPump and then PumpClaimed).
// At most one read and one write are in flight; Finish is issued once, after which OnDone may
// delete the reactor at any moment.
template <typename Request, typename Response>
class StreamReactor : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 protected:
  // The gRPC operations that the current state calls for.
  struct Actions {
    bool read = false;
    // The response to write: the subclass keeps it unchanged until OnWriteDone.
    const Response* write = nullptr;
    // Or one already serialized, kept likewise.
    grpc::ByteBuffer* write_bytes = nullptr;
    bool write_buffer_hint = false;  // more responses follow at once: gRPC may coalesce
    bool finish = false;
    grpc::Status finish_status;
  };

  // With mu_ held: what to do now. Returning read or write means it is now in flight.
  virtual Actions NextActions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;

  // A request arrived (`request` is valid until OnRead returns; the subclass says when the next
  // read may start through NextActions), or, with `request` null, no more will: `end` is OK
  // when the client half-closed or the call broke, INVALID_ARGUMENT when its bytes did not
  // parse (the stream is to end with it).
  virtual void OnRead(const Request* request, const absl::Status& end) = 0;

  // Runs the pump unless another thread is running it (which will see the new state).
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (!ClaimPump()) return;
    }
    PumpClaimed();
  }
  // With mu_ held: true when the caller is now the pumper, to call PumpClaimed once it has
  // released mu_.
  bool ClaimPump() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pumping_) return false;
    pumping_ = true;
    return true;
  }
  void PumpClaimed() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      Actions actions;
      {
        absl::MutexLock lock(&mu_);
        actions = NextActions();
        if (!actions.read && actions.write == nullptr && actions.write_bytes == nullptr &&
            !actions.finish) {
          pumping_ = false;
          return;
        }
      }
      if (actions.write != nullptr || actions.write_bytes != nullptr) {
        if (actions.write != nullptr) SerializeResponse(*actions.write, write_bytes_);
        grpc::WriteOptions options;
        if (actions.write_buffer_hint) options.set_buffer_hint();
        StartWrite(actions.write != nullptr ? &write_bytes_ : actions.write_bytes, options);
      }
      if (actions.read) StartRead(&read_bytes_);
      if (actions.finish) {
        // OnDone may delete this at any moment from here on: touch nothing.
        Finish(actions.finish_status);
        return;
      }
    }
  }

  absl::Mutex mu_;

 private:
  void OnReadDone(bool ok) final {
    if (!ok) {
      OnRead(nullptr, absl::OkStatus());
      return;
    }
    absl::Status parsed = ParseRequest(read_bytes_, request_);
    read_bytes_.Clear();
    if (parsed.ok()) {
      OnRead(&request_, parsed);
    } else {
      OnRead(nullptr, parsed);
    }
  }

  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  // Written by gRPC between StartRead and OnReadDone, then parsed into request_, which the
  // subclass reads in OnRead.
  grpc::ByteBuffer read_bytes_;
  Request request_;
  // The response gRPC is writing; set by the pump while no write is in flight.
  grpc::ByteBuffer write_bytes_;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_RPC_STREAM_REACTOR_H_
