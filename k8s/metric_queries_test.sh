#!/bin/bash
# //k8s:metric_queries_test: every metric the Grafana dashboard (k8s/monitoring) and the KEDA
# ScaledObject (k8s/autoscaling) query is on the sidecar's /metrics. See
# k8s/check_metric_queries.py.
set -euo pipefail
root="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-kafka_sidecar}"
exec /usr/bin/python3 "${root}/k8s/check_metric_queries.py" --root="${root}" \
  --binary="${root}/sidecar/kafka_sidecar"
