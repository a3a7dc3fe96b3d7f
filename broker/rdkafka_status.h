#ifndef KAFKA_SIDECAR_BROKER_RDKAFKA_STATUS_H_
#define KAFKA_SIDECAR_BROKER_RDKAFKA_STATUS_H_

#include <librdkafka/rdkafka.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kafka_sidecar::broker {

// The one place where librdkafka error codes become canonical status codes:
//   NOT_FOUND          unknown topic or partition
//   INVALID_ARGUMENT   a record Kafka will not take (too large, malformed)
//   PERMISSION_DENIED  authorization failures
//   UNAUTHENTICATED    SASL/SSL authentication failures
//   RESOURCE_EXHAUSTED the local queue is full
//   FAILED_PRECONDITION the group's members use an assignment strategy this client does not
//                       offer (INCONSISTENT_GROUP_PROTOCOL): retrying cannot help
//   UNAVAILABLE        brokers unreachable, timeouts, records purged at shutdown, and every
//                      other error Kafka marks as retriable
//   INTERNAL           fatal client errors (for example an idempotence failure)
//   UNKNOWN            anything else
// The message is `context`, then librdkafka's description and error name.
absl::Status RdKafkaStatus(rd_kafka_resp_err_t err, absl::string_view context);

// The canonical code alone, as above.
absl::StatusCode RdKafkaStatusCode(rd_kafka_resp_err_t err);

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_RDKAFKA_STATUS_H_
