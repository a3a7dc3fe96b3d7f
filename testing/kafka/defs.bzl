"""real_kafka_test: a cc_test against Apache Kafka, on each Kafka line it names."""

load("//bazel:precompiled_header.bzl", "pch_copts")

def real_kafka_test(name, srcs, deps, lines = ["3.9"]):
    """A large cc_test tagged real-kafka, once per Kafka line.

    The first line's target is `name`; each further line's is `name` plus `_kafka` and the
    line without its dot (end_to_end_test_kafka41). The fixture reads the line from
    KAFKA_SIDECAR_KAFKA_LINE. The sources are compiled once, for every line.
    """
    native.cc_library(
        name = name + "_cases",
        testonly = True,
        srcs = srcs,
        copts = pch_copts("//testing:grpc_test_pch"),
        deps = deps + ["//testing:grpc_test_pch"],
        alwayslink = True,
    )
    for i, line in enumerate(lines):
        native.cc_test(
            name = name if i == 0 else name + "_kafka" + line.replace(".", ""),
            size = "large",
            env = {"KAFKA_SIDECAR_KAFKA_LINE": line},
            tags = ["real-kafka"],
            deps = [name + "_cases"],
        )
