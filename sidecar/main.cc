// kafka-sidecar: a gRPC front for Kafka that runs beside one application in its pod.
// This file only defines the flags, checks them, wires the pieces and waits for a signal.

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "broker/compression_check.h"
#include "broker/embedded_cluster.h"
#include "broker/rdkafka_producer.h"
#include "broker/topic_creating_producer.h"
#include "sidecar/server/config.h"
#include "sidecar/server/consumer_factory.h"
#include "sidecar/server/server.h"
#include "sidecar/server/signals.h"

namespace {

// Every default lives in SidecarConfig; the flags take theirs from it.
const kafka_sidecar::sidecar::SidecarConfig kDefaults;

int32_t Ms(absl::Duration d) { return static_cast<int32_t>(absl::ToInt64Milliseconds(d)); }

}  // namespace

DEFINE_string(listen, kDefaults.listen.c_str(), "gRPC address to serve on: host:port or unix:/path");
DEFINE_string(brokers, "",
              "Kafka bootstrap servers (host:port,...), or 'embedded' for an in-process, "
              "in-memory Kafka cluster meant for trying things only. Required");
DEFINE_string(kafka_config, "",
              "extra librdkafka settings as key=value,key=value (for example "
              "linger.ms=5,compression.type=lz4); an item @/path reads a properties file, one "
              "key=value per line (use it for secrets: command lines are visible to others)");
DEFINE_bool(allow_remote, kDefaults.allow_remote,
            "allow --listen on an address other than loopback or a unix socket: the API has no "
            "authentication, so anyone who reaches it can produce and consume");
DEFINE_string(health_listen, kDefaults.health_listen.c_str(),
              "a second gRPC address serving only grpc.health.v1, for kubelet gRPC probes "
              "(service 'liveness': the process runs; service '': ready, Kafka reachable and "
              "not draining); empty: off");
DEFINE_string(metrics_listen, kDefaults.metrics_listen.c_str(),
              "HTTP address of /metrics (Prometheus), /healthz and /readyz; empty: off");
DEFINE_int32(health_check_interval_ms, Ms(kDefaults.health_check_interval),
             "how often the sidecar asks Kafka for metadata to know it is reachable (health)");
DEFINE_int32(max_pending_produces, kDefaults.max_pending_produces,
             "records of one ProduceStream or ProduceBatchStream accepted and not yet "
             "answered; past this the sidecar stops reading the stream (a batch is never "
             "split), so gRPC flow control pushes back on the app");
DEFINE_int32(max_in_flight_per_stream, kDefaults.max_in_flight_per_stream,
             "cap (and default) of a Consume stream's unacked records (Subscribe.max_in_flight)");
DEFINE_int32(commit_interval_ms, Ms(kDefaults.commit_interval),
             "how often acked offsets are committed to Kafka");
DEFINE_int32(max_buffered_records, kDefaults.max_buffered_records,
             "records of one subscription waiting in the sidecar (fetched, not yet sent to an "
             "app) at which its partitions are paused; they resume at a quarter");
DEFINE_int32(max_buffered_mib, kDefaults.max_buffered_mib,
             "the same bound in MiB of record data (keys, values, headers): whichever is "
             "reached first pauses the partitions");
DEFINE_int32(max_subscriptions, kDefaults.max_subscriptions,
             "subscriptions (consumer-group memberships, one per group and topic set) held at "
             "once, each with its own Kafka client, threads and buffers; a Consume stream that "
             "needs one more ends with RESOURCE_EXHAUSTED");
DEFINE_int32(unsubscribe_linger_ms, Ms(kDefaults.unsubscribe_linger),
             "how long a subscription (a consumer-group membership) outlives its last stream");
DEFINE_string(assignment_strategy,
              std::string(kafka_sidecar::sidecar::AssignmentStrategyName(kDefaults.assignment_strategy))
                  .c_str(),
              "how the consumer group spreads partitions over its members: cooperative-sticky "
              "(a rebalance stops only the partitions that move), range or roundrobin (every "
              "member stops); all members of a group must offer the same");
DEFINE_string(group_instance_id, kDefaults.group_instance_id.c_str(),
              "static group membership (KIP-345), for example the pod name: a sidecar that "
              "restarts within session.timeout.ms gets its partitions back without a "
              "rebalance. Empty: dynamic membership");
DEFINE_string(ordering,
              std::string(kafka_sidecar::sidecar::OrderingName(kDefaults.ordering)).c_str(),
              "how a subscription's records are spread over the app's streams: key (per-key "
              "order), partition (per-partition order) or none (least-loaded stream, no order)");
DEFINE_int32(client_inactivity_timeout_ms, Ms(kDefaults.client_inactivity_timeout),
             "a Consume stream holding unacked records that sends no ack or nack this long is "
             "ended with DEADLINE_EXCEEDED and its records go to the other streams");
DEFINE_int32(kafka_unavailable_timeout_ms, Ms(kDefaults.kafka_unavailable_timeout),
             "Kafka unreachable this long ends a subscription's streams with UNAVAILABLE");
DEFINE_int32(shutdown_grace_ms, Ms(kDefaults.shutdown_grace),
             "on SIGTERM, how long Kafka gets to acknowledge the records already accepted and "
             "apps get to ack the records in flight");
DEFINE_int32(embedded_partitions, kDefaults.embedded_partitions,
             "with --brokers=embedded: partitions of each topic created on first use");
DECLARE_bool(help);
DECLARE_bool(helpshort);
DECLARE_string(helpmatch);

DEFINE_int32(embedded_brokers, kDefaults.embedded_brokers,
             "with --brokers=embedded: number of in-memory brokers");

namespace kafka_sidecar::sidecar {
namespace {

constexpr int kExitBadFlags = 2;
constexpr int kExitStartFailed = 1;

absl::StatusOr<SidecarConfig> ConfigFromFlags() {
  SidecarConfig config;
  config.listen = FLAGS_listen;
  config.allow_remote = FLAGS_allow_remote;
  config.health_listen = FLAGS_health_listen;
  config.metrics_listen = FLAGS_metrics_listen;
  config.health_check_interval = absl::Milliseconds(FLAGS_health_check_interval_ms);
  config.brokers = FLAGS_brokers;
  absl::StatusOr<broker::KafkaSettings> settings = broker::LoadKafkaSettings(FLAGS_kafka_config);
  if (!settings.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kafka_config: ", settings.status().message()));
  }
  config.kafka_settings = *std::move(settings);
  config.max_pending_produces = FLAGS_max_pending_produces;
  config.max_in_flight_per_stream = FLAGS_max_in_flight_per_stream;
  config.commit_interval = absl::Milliseconds(FLAGS_commit_interval_ms);
  config.max_buffered_records = FLAGS_max_buffered_records;
  config.max_buffered_mib = FLAGS_max_buffered_mib;
  config.max_subscriptions = FLAGS_max_subscriptions;
  config.unsubscribe_linger = absl::Milliseconds(FLAGS_unsubscribe_linger_ms);
  config.kafka_unavailable_timeout = absl::Milliseconds(FLAGS_kafka_unavailable_timeout_ms);
  absl::StatusOr<Ordering> ordering = ParseOrdering(FLAGS_ordering);
  if (!ordering.ok()) return ordering.status();
  config.ordering = *ordering;
  absl::StatusOr<AssignmentStrategy> strategy = ParseAssignmentStrategy(FLAGS_assignment_strategy);
  if (!strategy.ok()) return strategy.status();
  config.assignment_strategy = *strategy;
  config.group_instance_id = FLAGS_group_instance_id;
  config.client_inactivity_timeout = absl::Milliseconds(FLAGS_client_inactivity_timeout_ms);
  config.shutdown_grace = absl::Milliseconds(FLAGS_shutdown_grace_ms);
  config.embedded_partitions = FLAGS_embedded_partitions;
  config.embedded_brokers = FLAGS_embedded_brokers;
  if (absl::Status valid = ValidateConfig(config); !valid.ok()) return valid;
  return config;
}

int Run(const SidecarConfig& config) {
  std::unique_ptr<broker::EmbeddedCluster> cluster;
  std::string bootstrap = config.brokers;
  if (config.brokers == kEmbeddedBrokers) {
    absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> created =
        broker::EmbeddedCluster::Create(config.embedded_brokers);
    if (!created.ok()) {
      LOG(ERROR) << created.status();
      return kExitStartFailed;
    }
    cluster = *std::move(created);
    bootstrap = cluster->bootstrap_servers();
    LOG(WARNING) << "[embedded] Kafka is IN MEMORY in this process, for trying things only: "
                 << "nothing survives a restart. Bootstrap servers: " << bootstrap;
  }

  broker::RdKafkaProducerOptions options;
  options.bootstrap_servers = bootstrap;
  options.settings = config.kafka_settings;
  absl::StatusOr<std::unique_ptr<broker::RdKafkaProducer>> rdkafka =
      broker::RdKafkaProducer::Create(options);
  if (!rdkafka.ok()) {
    LOG(ERROR) << "--kafka_config: " << rdkafka.status().message();
    std::cerr << "kafka-sidecar: --kafka_config: " << rdkafka.status().message() << "\n";
    return kExitBadFlags;
  }
  std::unique_ptr<broker::Producer> producer = *std::move(rdkafka);
  // librdkafka may ignore the codec asked for on some clusters: say so once, at start.
  if (std::optional<broker::CompressionCheck> check =
          broker::CheckCompression(bootstrap, config.kafka_settings, absl::Seconds(5))) {
    if (check->warning.has_value()) {
      LOG(WARNING) << "[producer] " << *check->warning;
    } else {
      LOG(INFO) << "[producer] compression.type=" << check->codec << ": the brokers' Produce "
                << "versions (" << check->produce_versions.front().first << ".."
                << check->produce_versions.front().second << ") let librdkafka compress";
    }
  }
  std::unique_ptr<broker::EmbeddedTopics> embedded_topics;
  if (cluster != nullptr) {
    embedded_topics =
        std::make_unique<broker::EmbeddedTopics>(*cluster, config.embedded_partitions);
    producer = std::make_unique<broker::TopicCreatingProducer>(*embedded_topics,
                                                               std::move(producer));
  }

  broker::KafkaSettings consumer_settings;
  if (cluster != nullptr) {
    // The mock brokers answer an empty fetch only after the whole fetch.wait.max.ms.
    consumer_settings.emplace_back("fetch.wait.max.ms", "10");
  }
  consumer_settings.insert(consumer_settings.end(), config.kafka_settings.begin(),
                           config.kafka_settings.end());
  ConsumerFactory consumers = RdKafkaConsumerFactory(config, bootstrap, consumer_settings);
  // Consumer settings are checked now, not at the first subscription.
  if (absl::Status checked = consumers("kafka-sidecar-config-check", 0).status(); !checked.ok()) {
    std::cerr << "kafka-sidecar: --kafka_config: " << checked.message() << "\n";
    return kExitBadFlags;
  }

  absl::StatusOr<std::unique_ptr<SidecarServer>> server =
      SidecarServer::Start(config, {*producer, consumers, embedded_topics.get()});
  if (!server.ok()) {
    LOG(ERROR) << server.status();
    std::cerr << "kafka-sidecar: " << server.status().message() << "\n";
    return kExitStartFailed;
  }
  LOG(INFO) << "[server] serving kafka_sidecar.v1 on " << config.listen
            << (absl::StartsWith(config.listen, "unix:")
                    ? ""
                    : absl::StrCat(" (port ", (*server)->port(), ")"))
            << ", Kafka at " << bootstrap;

  // SIGTERM and SIGINT were blocked before any thread started, so they wait here.
  const int received = WaitForShutdownSignal();  // before LOG, which stamps the time it starts
  LOG(INFO) << "[server] received " << strsignal(received);
  (*server)->Shutdown();
  server->reset();
  producer.reset();
  cluster.reset();
  LOG(INFO) << "[server] bye";
  return 0;
}

}  // namespace
}  // namespace kafka_sidecar::sidecar

int main(int argc, char** argv) {
  kafka_sidecar::sidecar::BlockShutdownSignals();

  gflags::SetUsageMessage(
      "a gRPC sidecar for Kafka: produce with backpressure, consume with per-record acks.\n"
      "  kafka_sidecar --brokers=kafka-1:9092,kafka-2:9092 [--listen=127.0.0.1:50051]\n"
      "  kafka_sidecar --brokers=embedded      (in-memory Kafka, for trying things)\n"
      "Every flag, the libraries' too: --helpfull.");
  gflags::SetVersionString("0.1.0");
  gflags::ParseCommandLineNonHelpFlags(&argc, &argv, true);
  // gflags' help shows a flag's current value beside its default, and --kafka_config may hold
  // secrets: it is put back only after the help flags were handled.
  const std::string kafka_config = FLAGS_kafka_config;
  FLAGS_kafka_config.clear();
  if (FLAGS_help || FLAGS_helpshort) {
    // --help shows this program's flags, not those of every library linked in (--helpfull).
    FLAGS_help = FLAGS_helpshort = false;
    FLAGS_helpmatch = "sidecar/main";
  }
  gflags::HandleCommandLineHelpFlags();
  FLAGS_kafka_config = kafka_config;
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  // Debian's abseil is built with deadlock detection on, which walks a lock graph on every
  // Mutex::Lock; tests keep it, production does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc > 1) {
    std::cerr << "kafka-sidecar: unexpected argument '" << argv[1] << "' (flags start with --)\n";
    return kafka_sidecar::sidecar::kExitBadFlags;
  }

  absl::StatusOr<kafka_sidecar::sidecar::SidecarConfig> config =
      kafka_sidecar::sidecar::ConfigFromFlags();
  if (!config.ok()) {
    std::cerr << "kafka-sidecar: " << config.status().message() << "\n(see --help)\n";
    return kafka_sidecar::sidecar::kExitBadFlags;
  }
  return kafka_sidecar::sidecar::Run(*config);
}
