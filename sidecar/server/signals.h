#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_SIGNALS_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_SIGNALS_H_

#include <signal.h>

namespace kafka_sidecar::sidecar {

// SIGTERM and SIGINT, the signals that stop the process gracefully.
inline sigset_t ShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

// Blocks the shutdown signals in the calling thread. Call it first in main, before any thread
// exists: threads inherit the mask, so only WaitForShutdownSignal receives them.
inline void BlockShutdownSignals() {
  const sigset_t signals = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

// Waits for SIGTERM or SIGINT and returns which came.
inline int WaitForShutdownSignal() {
  const sigset_t signals = ShutdownSignals();
  int signal = 0;
  sigwait(&signals, &signal);
  return signal;
}

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_SIGNALS_H_
