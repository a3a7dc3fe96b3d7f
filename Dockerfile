# The kafka-sidecar image: the sidecar and its CLI on Debian 12, running as a non-root user.
#
#   docker build -t example.com/kafka-sidecar:0.1.0 .
#   docker run --rm example.com/kafka-sidecar:0.1.0 --brokers=embedded
#
# Untested here: the development machine has the docker client but no engine, so this file is
# kept correct by review and by //k8s:kubernetes_test (k8s/check), which checks that EXPOSE matches the
# manifests' ports and that the runtime packages below provide every shared library the
# sidecar links (ldd + dpkg -S on a Debian 12 build).

# ---- builder: the same Debian 12 packages and offline Bazel build as a developer machine.
FROM debian:12 AS builder
WORKDIR /src
# install_deps.sh alone first, so that its (slow) layer is reused while only sources change.
COPY tools/install_deps.sh tools/install_deps.sh
RUN tools/install_deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# --spawn_strategy=local: Bazel's linux-sandbox needs user namespaces, which Docker's default
# seccomp profile does not allow. The binaries are copied out of bazel-bin (a symlink into
# Bazel's cache) in the same step.
RUN bazel build -c opt --spawn_strategy=local //sidecar:kafka_sidecar //sidecar:kafka_sidecar_cli \
 && bin="$(bazel info -c opt bazel-bin)" \
 && install -D -m 0755 "$bin/sidecar/kafka_sidecar" /out/kafka_sidecar \
 && install -D -m 0755 "$bin/sidecar/kafka_sidecar_cli" /out/kafka_sidecar_cli \
 && bazel shutdown

# ---- runtime: only the shared libraries the binaries link, from Debian 12.
FROM debian:12-slim
# The packages that provide the .so files of `ldd kafka_sidecar` and `ldd kafka_sidecar_cli`
# (found with `dpkg -S`), and libc6 from the base image. libcpp-httplib0.11 (with libbrotli1)
# serves --metrics_listen.
# ca-certificates: the CA bundle for TLS to Kafka (ssl.ca.location defaults to the system's).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libabsl20220623 \
      libbrotli1 \
      libc-ares2 \
      libcpp-httplib0.11 \
      libgcc-s1 \
      libgflags2.2 \
      libgoogle-glog0v6 \
      libgrpc++1.51 \
      libgrpc29 \
      liblz4-1 \
      liblzma5 \
      libprotobuf32 \
      librdkafka1 \
      libre2-9 \
      libsasl2-2 \
      libssl3 \
      libstdc++6 \
      libtcmalloc-minimal4 \
      libunwind8 \
      libzstd1 \
      zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/kafka_sidecar /out/kafka_sidecar_cli /usr/local/bin/
# Fail the image build, not the pod, if a library is missing.
RUN ! ldd /usr/local/bin/kafka_sidecar /usr/local/bin/kafka_sidecar_cli | grep 'not found'
# The numeric user of the manifests' securityContext (runAsUser: 65532); no home, no shell needed.
USER 65532:65532
# 50052: grpc.health.v1 for kubelet probes (--health_listen=0.0.0.0:50052); 9464: /metrics,
# /healthz, /readyz (--metrics_listen=0.0.0.0:9464). The manifests pass both flags; by default
# the sidecar listens on 127.0.0.1 only. The app API (--listen, 127.0.0.1:50051) is for the
# pod's own containers and is not exposed.
EXPOSE 50052 9464
ENTRYPOINT ["/usr/local/bin/kafka_sidecar"]
