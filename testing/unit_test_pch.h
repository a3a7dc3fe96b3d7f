// What unit tests include, compiled once (//testing:unit_test_pch): gtest, gmock and the
// abseil most files use. No gRPC: the domain's tests never see it.
#ifndef KAFKA_SIDECAR_TESTING_UNIT_TEST_PCH_H_
#define KAFKA_SIDECAR_TESTING_UNIT_TEST_PCH_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

#endif  // KAFKA_SIDECAR_TESTING_UNIT_TEST_PCH_H_
