// What the tests that talk gRPC include, compiled once (//testing:grpc_test_pch): gtest,
// gmock, gRPC, the service's generated code and the abseil most files use.
#ifndef KAFKA_SIDECAR_TESTING_GRPC_TEST_PCH_H_
#define KAFKA_SIDECAR_TESTING_GRPC_TEST_PCH_H_

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proto/kafka_sidecar.grpc.pb.h"

#endif  // KAFKA_SIDECAR_TESTING_GRPC_TEST_PCH_H_
