"""cc_grpc_library: C++ messages and gRPC stubs from the system protoc and grpc_cpp_plugin."""

def cc_grpc_library(name, proto, messages_name, visibility = None, messages_visibility = None):
    """Generates <proto>.pb.{h,cc} and <proto>.grpc.pb.{h,cc} and wraps each pair in a cc_library.

    Args:
      name: the cc_library of the gRPC stubs and services (it exports the messages too).
      proto: a .proto file in this package, without imports of other local protos.
      messages_name: the cc_library of the messages alone, with no gRPC.
      visibility: the gRPC library's visibility.
      messages_visibility: the messages library's visibility.
    """
    base = proto[:-len(".proto")]
    outs = [base + ext for ext in [".pb.h", ".pb.cc", ".grpc.pb.h", ".grpc.pb.cc"]]
    native.genrule(
        name = name + "_gen",
        srcs = [proto],
        outs = outs,
        cmd = ("protoc --proto_path=. --cpp_out=$(GENDIR) --grpc_out=$(GENDIR) " +
               "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) $(location " + proto + ")"),
    )
    native.cc_library(
        name = messages_name,
        srcs = [base + ".pb.cc"],
        hdrs = [base + ".pb.h"],
        deps = ["//third_party/system:protobuf"],
        visibility = messages_visibility,
    )
    native.cc_library(
        name = name,
        srcs = [base + ".grpc.pb.cc"],
        hdrs = [base + ".grpc.pb.h"],
        deps = [
            ":" + messages_name,
            "//third_party/system:grpc",
            "//third_party/system:protobuf",
        ],
        visibility = visibility,
    )
