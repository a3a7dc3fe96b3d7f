#include "testing/kafka/real_kafka.h"

#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "testing/kafka_test_client.h"

namespace kafka_sidecar::testing {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(90);

constexpr char kLog4j[] =
    "log4j.rootLogger=INFO, out\n"
    "log4j.appender.out=org.apache.log4j.ConsoleAppender\n"
    "log4j.appender.out.layout=org.apache.log4j.PatternLayout\n"
    "log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n\n";
constexpr char kLog4j2[] =
    "appender.out.type=Console\n"
    "appender.out.name=out\n"
    "appender.out.layout.type=PatternLayout\n"
    "appender.out.layout.pattern=[%d] %p %m (%c)%n\n"
    "rootLogger.level=info\n"
    "rootLogger.appenderRef.out.ref=out\n";

// A loopback port nothing listens on now. Kafka binds it a moment later; another process
// taking it meanwhile makes that node fail to start, and Start tries again on new ports.
absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("bind failed");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string CacheDir() {
  if (const char* env = std::getenv("KAFKA_SIDECAR_KAFKA_CACHE"); env != nullptr && *env != 0) {
    return env;
  }
  // Not $HOME: Bazel points it at the test's temporary directory.
  const passwd* pw = getpwuid(getuid());
  return absl::StrCat(pw != nullptr ? pw->pw_dir : "/root", "/.cache/kafka-sidecar");
}

std::string JavaBinary() {
  if (const char* home = std::getenv("JAVA_HOME"); home != nullptr && *home != 0) {
    return absl::StrCat(home, "/bin/java");
  }
  return "/usr/bin/java";
}

// A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters). Like
// Kafka's own Uuid.randomUuid, never one that starts with '-': the storage tool's argument parser
// would read "-t -x..." as an option with no value (1 format in 64 failed that way).
std::string NewClusterId() {
  std::random_device random;
  std::string id;
  do {
    std::string bytes(16, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    id = absl::WebSafeBase64Escape(bytes);
  } while (id.front() == '-');
  return id;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return out.good() ? absl::OkStatus() : absl::InternalError("cannot write " + path);
}

std::string TempRoot() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

}  // namespace

std::string RealKafka::DefaultLine() {
  const char* line = std::getenv("KAFKA_SIDECAR_KAFKA_LINE");
  return line != nullptr && *line != 0 ? line : "3.9";
}

absl::StatusOr<std::unique_ptr<RealKafka>> RealKafka::Start(Options options) {
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::unique_ptr<RealKafka>> kafka = StartOnce(options);
    if (kafka.ok() || attempt == 3 ||
        !absl::StrContains(kafka.status().message(), "Address already in use")) {
      return kafka;
    }
    std::cerr << "[real_kafka] a port was taken before Kafka bound it; starting again on new "
                 "ports\n";
  }
}

absl::StatusOr<std::unique_ptr<RealKafka>> RealKafka::StartOnce(Options options) {
  const absl::Time start = absl::Now();
  auto kafka = std::unique_ptr<RealKafka>(new RealKafka());
  kafka->options_ = std::move(options);
  if (kafka->options_.line.empty()) kafka->options_.line = DefaultLine();
  const Options& o = kafka->options_;
  kafka->libs_ = absl::StrCat(CacheDir(), "/kafka-", o.line, "/libs");
  if (!std::filesystem::is_directory(kafka->libs_)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Apache Kafka ", o.line, " is not in ", kafka->libs_, ": run tools/fetch_kafka.sh ",
        o.line, " (tools/install_deps.sh does)"));
  }
  kafka->java_ = JavaBinary();
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s/kafka-XXXXXX", TempRoot().c_str());
  if (mkdtemp(dir) == nullptr) return absl::InternalError("mkdtemp failed");
  kafka->dir_ = dir;

  std::vector<std::string> listener_names = {"PLAINTEXT", "CONTROLLER"};
  std::vector<std::string> protocol_map = {"PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"};
  for (const Listener& l : o.listeners) {
    listener_names.push_back(l.name);
    protocol_map.push_back(absl::StrCat(l.name, ":", l.protocol));
  }
  kafka->nodes_.resize(o.nodes);
  std::vector<std::string> voters;
  for (int i = 0; i < o.nodes; ++i) {
    Node& node = kafka->nodes_[i];
    node.id = i + 1;
    node.dir = absl::StrCat(kafka->dir_, "/node-", node.id);
    std::filesystem::create_directories(node.dir);
    for (const std::string& name : listener_names) {
      absl::StatusOr<int> port = FreePort();
      if (!port.ok()) return port.status();
      node.ports[name] = *port;
    }
    voters.push_back(absl::StrCat(node.id, "@127.0.0.1:", node.ports["CONTROLLER"]));
  }

  // Replication fits the cluster: three copies where there are three nodes.
  const int replicas = std::min(o.nodes, 3);
  const std::string cluster_id = NewClusterId();
  for (Node& node : kafka->nodes_) {
    std::vector<std::string> listeners;
    std::vector<std::string> advertised;
    for (const std::string& name : listener_names) {
      const std::string address = absl::StrCat(name, "://127.0.0.1:", node.ports[name]);
      listeners.push_back(address);
      if (name != "CONTROLLER") advertised.push_back(address);
    }
    std::map<std::string, std::string> props = {
        {"process.roles", "broker,controller"},
        {"node.id", absl::StrCat(node.id)},
        {"controller.quorum.voters", absl::StrJoin(voters, ",")},
        {"listeners", absl::StrJoin(listeners, ",")},
        {"advertised.listeners", absl::StrJoin(advertised, ",")},
        {"controller.listener.names", "CONTROLLER"},
        {"inter.broker.listener.name", "PLAINTEXT"},
        {"listener.security.protocol.map", absl::StrJoin(protocol_map, ",")},
        {"log.dirs", node.dir + "/data"},
        {"auto.create.topics.enable", "false"},
        {"offsets.topic.replication.factor", absl::StrCat(replicas)},
        {"offsets.topic.num.partitions", "4"},
        {"transaction.state.log.replication.factor", absl::StrCat(replicas)},
        {"transaction.state.log.min.isr", "1"},
        {"default.replication.factor", absl::StrCat(replicas)},
        {"min.insync.replicas", "1"},
        // Tests form groups in well under a second, with session timeouts down to 1 s.
        {"group.initial.rebalance.delay.ms", "0"},
        {"group.min.session.timeout.ms", "500"},
        {"log.flush.interval.messages", "100000000"},
        {"num.network.threads", "2"},
        {"num.io.threads", "2"},
    };
    for (const auto& [key, value] : o.properties) props[key] = value;
    std::string text;
    for (const auto& [key, value] : props) absl::StrAppend(&text, key, "=", value, "\n");
    if (absl::Status s = WriteFile(node.dir + "/server.properties", text); !s.ok()) return s;
    // Kafka 3.9 logs through reload4j, 4.x through log4j 2; both to stdout, the node's log.
    if (absl::Status s = WriteFile(node.dir + "/log4j.properties", kLog4j); !s.ok()) return s;
    if (absl::Status s = WriteFile(node.dir + "/log4j2.properties", kLog4j2); !s.ok()) return s;
  }

  // Format every node's storage at once (a JVM each), then start them together.
  std::vector<std::unique_ptr<Subprocess>> formats;
  for (Node& node : kafka->nodes_) {
    std::vector<std::string> argv = kafka->Java(node);
    argv.insert(argv.end(), {"kafka.tools.StorageTool", "format", "-t", cluster_id, "-c",
                             node.dir + "/server.properties"});
    argv.insert(argv.end(), o.format_args.begin(), o.format_args.end());
    absl::StatusOr<std::unique_ptr<Subprocess>> format =
        Subprocess::Start(argv, node.dir + "/format.log");
    if (!format.ok()) return format.status();
    formats.push_back(*std::move(format));
  }
  for (size_t i = 0; i < formats.size(); ++i) {
    absl::StatusOr<int> exit = formats[i]->Wait(kStartTimeout);
    if (!exit.ok() || *exit != 0) {
      return absl::InternalError(absl::StrCat("formatting node ", i + 1, "'s storage failed:\n",
                                              formats[i]->Log()));
    }
  }
  for (Node& node : kafka->nodes_) {
    if (absl::Status s = kafka->Launch(node); !s.ok()) return s;
  }
  if (absl::Status s = kafka->AwaitBrokers(kStartTimeout); !s.ok()) return s;
  kafka->start_time_ = absl::Now() - start;
  return kafka;
}

RealKafka::~RealKafka() {
  for (Node& node : nodes_) node.process.reset();  // kills it
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::vector<std::string> RealKafka::Java(const Node& node) const {
  return {java_,
          "-Djava.awt.headless=true",
          "-Dlog4j.configuration=file:" + node.dir + "/log4j.properties",
          "-Dlog4j2.configurationFile=" + node.dir + "/log4j2.properties",
          "-cp",
          libs_ + "/*"};
}

absl::Status RealKafka::Launch(Node& node) {
  ++node.starts;
  std::vector<std::string> argv = Java(node);
  argv.insert(argv.begin() + 1, {"-Xms256m", "-Xmx1g", "-XX:+UseG1GC"});
  argv.insert(argv.end(), {"kafka.Kafka", node.dir + "/server.properties"});
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, absl::StrCat(node.dir, "/kafka-", node.starts, ".log"));
  if (!process.ok()) return process.status();
  node.process = *std::move(process);
  return absl::OkStatus();
}

absl::Status RealKafka::AwaitBrokers(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<int> brokers = 0;
  while (absl::Now() < deadline) {
    for (const Node& node : nodes_) {
      if (node.process != nullptr && node.process->Wait(absl::ZeroDuration()).ok()) {
        return absl::UnavailableError(
            absl::StrCat("Kafka node ", node.id, " exited while starting:\n", Logs()));
      }
    }
    // Each look is a metadata round trip with its own timeout: the loop waits on Kafka.
    brokers = BrokerCount(bootstrap(), absl::Seconds(2));
    if (brokers.ok() && *brokers == nodes()) return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat(
      "Kafka did not list ", nodes(), " brokers within ", absl::FormatDuration(timeout), " (",
      brokers.ok() ? absl::StrCat(*brokers, " listed") : brokers.status().ToString(), "):\n",
      Logs()));
}

std::string RealKafka::bootstrap(const std::string& listener) const {
  std::vector<std::string> servers;
  for (const Node& node : nodes_) {
    auto port = node.ports.find(listener);
    if (port != node.ports.end()) servers.push_back(absl::StrCat("127.0.0.1:", port->second));
  }
  return absl::StrJoin(servers, ",");
}

absl::Status RealKafka::Kill(int i) {
  Node& node = nodes_.at(i);
  if (node.process == nullptr) return absl::FailedPreconditionError("node is not running");
  node.process->Signal(SIGKILL);
  absl::StatusOr<int> exit = node.process->Wait(absl::Seconds(30));
  if (!exit.ok()) return exit.status();
  node.process.reset();
  return absl::OkStatus();
}

absl::Status RealKafka::Restart(int i) {
  Node& node = nodes_.at(i);
  if (node.process != nullptr) return absl::FailedPreconditionError("node is running");
  if (absl::Status s = Launch(node); !s.ok()) return s;
  return AwaitBrokers(kStartTimeout);
}

absl::StatusOr<std::string> RealKafka::RunTool(int i, const std::string& main_class,
                                               const std::vector<std::string>& args) const {
  const Node& node = nodes_.at(i);
  std::vector<std::string> argv = Java(node);
  argv.push_back(main_class);
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<std::unique_ptr<Subprocess>> tool =
      Subprocess::Start(argv, absl::StrCat(node.dir, "/tool-", ++tools_run_, ".log"));
  if (!tool.ok()) return tool.status();
  absl::StatusOr<int> exit = (*tool)->Wait(kStartTimeout);
  if (!exit.ok() || *exit != 0) {
    return absl::InternalError(absl::StrCat(main_class, " failed:\n", (*tool)->Log()));
  }
  return (*tool)->Log();
}

std::string RealKafka::Log(int i) const {
  const Node& node = nodes_.at(i);
  if (node.process != nullptr) return node.process->Log();
  std::ifstream in(absl::StrCat(node.dir, "/kafka-", node.starts, ".log"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string RealKafka::Logs() const {
  constexpr size_t kTail = 6000;
  std::string out;
  for (int i = 0; i < nodes(); ++i) {
    const std::string log = Log(i);
    absl::StrAppend(&out, "--- Kafka node ", i + 1, " (last ", kTail, " bytes):\n",
                    log.size() > kTail ? log.substr(log.size() - kTail) : log, "\n");
  }
  return out;
}

}  // namespace kafka_sidecar::testing
