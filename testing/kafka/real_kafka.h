#ifndef KAFKA_SIDECAR_TESTING_KAFKA_REAL_KAFKA_H_
#define KAFKA_SIDECAR_TESTING_KAFKA_REAL_KAFKA_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "testing/subprocess.h"

namespace kafka_sidecar::testing {

// Apache Kafka itself for tests: a KRaft cluster of one or more nodes, each a broker and a
// controller in one JVM, on loopback ports, started from the jars tools/fetch_kafka.sh cached
// ($KAFKA_SIDECAR_KAFKA_CACHE, or ~/.cache/kafka-sidecar). Its storage lives in a new directory
// under $TEST_TMPDIR. Topics are never created automatically. Not thread-safe.
class RealKafka {
 public:
  // A listener besides PLAINTEXT (which the cluster's own traffic and the tests' plain clients
  // use), for example {"SECURE", "SASL_SSL"}.
  struct Listener {
    std::string name;
    std::string protocol;
  };
  struct Options {
    int nodes = 1;
    // A Kafka line tools/fetch_kafka.sh fetches, 3.9 or 4.1; empty: $KAFKA_SIDECAR_KAFKA_LINE,
    // or 3.9 when that is unset (the BUILD file runs some tests again on 4.1 that way).
    std::string line;
    // Added to every node's server.properties after the defaults (a later line wins).
    std::map<std::string, std::string> properties;
    std::vector<Listener> listeners;
    // Extra arguments of the storage format (for example --add-scram for SCRAM users).
    std::vector<std::string> format_args;
  };

  // The line a cluster started without Options::line runs: $KAFKA_SIDECAR_KAFKA_LINE, or 3.9.
  static std::string DefaultLine();

  // Formats each node's storage, starts the nodes and waits until the cluster's metadata lists
  // every broker. FAILED_PRECONDITION when the jars are not cached; UNAVAILABLE with the
  // nodes' logs when the cluster does not come up in time. A node that finds one of its ports
  // taken (another process bound it between the choice and Kafka's bind) gets a new cluster on
  // new ports, up to three times.
  static absl::StatusOr<std::unique_ptr<RealKafka>> Start(Options options);
  // Kills every node still running and removes the cluster's files.
  ~RealKafka();

  // The PLAINTEXT bootstrap servers, or those of the listener named `listener`.
  std::string bootstrap(const std::string& listener = "PLAINTEXT") const;
  int nodes() const { return static_cast<int>(nodes_.size()); }
  // The Kafka line it runs, "3.9" or "4.1".
  const std::string& line() const { return options_.line; }
  // How long Start took.
  absl::Duration start_time() const { return start_time_; }
  // The directory of the cluster's files (removed with the cluster).
  const std::string& dir() const { return dir_; }

  // Kills node `i` (0-based) with SIGKILL, as a crash would, and waits until it is gone.
  absl::Status Kill(int i);
  // Starts node `i` again on its ports and storage and waits until the metadata lists every
  // broker again.
  absl::Status Restart(int i);
  bool running(int i) const { return nodes_[i].process != nullptr; }
  // What node `i` logged.
  std::string Log(int i) const;
  // Node `i`'s log directory (log.dirs): a partition's segments are in <topic>-<partition>/.
  std::string data_dir(int i) const { return nodes_.at(i).dir + "/data"; }
  // Runs one of Kafka's command-line tools (its main class, then `args`) on node `i`'s files
  // and returns what it printed; INTERNAL with the output when it fails.
  absl::StatusOr<std::string> RunTool(int i, const std::string& main_class,
                                      const std::vector<std::string>& args) const;

 private:
  // One try of Start, on ports chosen now.
  static absl::StatusOr<std::unique_ptr<RealKafka>> StartOnce(Options options);

  struct Node {
    int id = 0;  // Kafka's node.id: i + 1
    std::map<std::string, int> ports;  // listener name -> port
    std::string dir;
    std::unique_ptr<Subprocess> process;
    int starts = 0;
  };

  RealKafka() = default;
  // The JVM's command line up to the main class, for tools run on `node`'s files.
  std::vector<std::string> Java(const Node& node) const;
  absl::Status Launch(Node& node);
  // Waits until metadata from the cluster lists every node as a broker.
  absl::Status AwaitBrokers(absl::Duration timeout);
  std::string Logs() const;

  Options options_;
  std::string libs_;
  std::string java_;
  std::string dir_;
  std::vector<Node> nodes_;
  absl::Duration start_time_;
  mutable int tools_run_ = 0;
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_KAFKA_REAL_KAFKA_H_
