// Turns Nagle's algorithm off on every connection this process accepts, as a real Kafka broker
// does (its SocketServer sets TCP_NODELAY). librdkafka's mock brokers leave it on, so a small
// response waits for the ACK of the one before it, which the client may delay by 40 ms: a
// client that waits for its answers before sending more (a bounded window, as the sidecar's
// produce streams have) stalls for 40 ms every few requests, and a benchmark measures the
// mock's sockets instead of the client.
//
// Linked into mock_kafka only. This definition of accept() takes the place of libc's for the
// shared libraries the binary loads (librdkafka's mock calls accept()), and calls libc's.

#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace {

using AcceptFn = int (*)(int, sockaddr*, socklen_t*);

AcceptFn LibcAccept() {
  static const AcceptFn libc = reinterpret_cast<AcceptFn>(dlsym(RTLD_NEXT, "accept"));
  return libc;
}

}  // namespace

extern "C" int accept(int fd, sockaddr* addr, socklen_t* addr_len) {
  const int connection = LibcAccept()(fd, addr, addr_len);
  if (connection >= 0) {
    const int on = 1;
    // Fails harmlessly for a socket that is not TCP (a Unix socket).
    setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  }
  return connection;
}
