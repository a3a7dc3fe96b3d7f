#!/usr/bin/python3
"""Every kafka_sidecar_* metric that the Grafana dashboard and the KEDA ScaledObject query is
one the sidecar exports.

Run by //k8s:metric_queries_test with Debian's /usr/bin/python3 (python3-yaml). It starts the
sidecar binary on embedded Kafka, reads its /metrics page, and checks each PromQL expression:
the dashboard's panel targets and template variable queries (k8s/monitoring/*.json) and the
queries of Prometheus triggers in ScaledObjects (any YAML under k8s/ of kind ScaledObject).
A name queried as a histogram's _bucket, _sum or _count counts when the histogram is there.
Each query is one test case of a JUnit XML report in gtest's shape, written to $XML_OUTPUT_FILE
when set, so tools/test.sh counts them. Exit code 1 when a check failed.

By hand, from the repository root:

  bazel build //sidecar:kafka_sidecar
  /usr/bin/python3 k8s/check_metric_queries.py --binary=bazel-bin/sidecar/kafka_sidecar
"""

import argparse
import glob
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from xml.sax.saxutils import quoteattr

import yaml

METRIC = re.compile(r"\bkafka_sidecar_[a-zA-Z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exported_families(binary, timeout_s=60):
    """Starts the sidecar on embedded Kafka and returns the metric families on /metrics."""
    metrics_port = free_port()
    with tempfile.TemporaryDirectory() as work:
        log_path = os.path.join(work, "sidecar.log")
        with open(log_path, "w") as log:
            sidecar = subprocess.Popen(
                [binary, "--brokers=embedded", "--listen=unix:" + os.path.join(work, "api.sock"),
                 "--health_listen=127.0.0.1:%d" % free_port(),
                 "--metrics_listen=127.0.0.1:%d" % metrics_port],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    url = "http://127.0.0.1:%d/metrics" % metrics_port
                    page = urllib.request.urlopen(url, timeout=5).read().decode()
                    break
                except OSError:
                    if sidecar.poll() is not None or time.monotonic() > deadline:
                        with open(log_path) as log:
                            raise SystemExit("the sidecar did not serve /metrics:\n" + log.read())
                    time.sleep(0.1)  # between attempts, within the deadline above
        finally:
            sidecar.terminate()
            sidecar.wait(timeout=30)
    return set(re.findall(r"^# TYPE (\S+) \S+$", page, re.MULTILINE))


def dashboard_queries(path):
    """(where, expr) for every target and template variable query of a Grafana dashboard."""
    with open(path) as f:
        dashboard = json.load(f)
    for key in ("title", "uid", "panels"):
        if key not in dashboard:
            yield "%s: no %r" % (path, key), None
    queries = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            queries.append(("panel %r %s" % (panel.get("title"), target.get("refId")),
                            target.get("expr")))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            queries.append(("variable %r" % variable.get("name"), query))
    for where, expr in queries:
        yield "%s: %s" % (os.path.basename(path), where), expr


def scaled_object_queries(path):
    """(where, query) for every Prometheus trigger of each ScaledObject in a YAML file."""
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not isinstance(doc, dict) or doc.get("kind") != "ScaledObject":
                continue
            name = (doc.get("metadata") or {}).get("name")
            for i, trigger in enumerate((doc.get("spec") or {}).get("triggers") or []):
                if trigger.get("type") == "prometheus":
                    yield ("%s: ScaledObject %r trigger %d" % (os.path.basename(path), name, i),
                           (trigger.get("metadata") or {}).get("query"))


def check(expr, families):
    """None when every kafka_sidecar_* name in `expr` is exported, else what is wrong."""
    if not expr:
        return "no query"
    names = METRIC.findall(expr)
    if not names:
        return "queries no kafka_sidecar_* metric: %s" % expr
    missing = []
    for name in names:
        base = name
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in families:
                base = name[: -len(suffix)]
        if base not in families:
            missing.append(name)
    if missing:
        return "not on the sidecar's /metrics: %s" % ", ".join(sorted(set(missing)))
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=".", help="the repository root")
    parser.add_argument("--binary", required=True, help="the kafka_sidecar binary")
    args = parser.parse_args()

    families = exported_families(args.binary)
    cases = []
    for path in sorted(glob.glob(os.path.join(args.root, "k8s/monitoring/*.json"))):
        cases.extend(dashboard_queries(path))
    for path in sorted(glob.glob(os.path.join(args.root, "k8s/**/*.yaml"), recursive=True)):
        cases.extend(scaled_object_queries(path))
    if not any(where.startswith("grafana") for where, _ in cases) or not any(
            "ScaledObject" in where for where, _ in cases):
        cases.append(("the dashboard and the ScaledObject", None))

    results = [(where, check(expr, families) if expr is not None else "missing")
               for where, expr in cases]
    failures = [(where, why) for where, why in results if why]
    for where, why in results:
        print("%s %s%s" % ("FAIL" if why else "ok  ", where, ": " + why if why else ""))

    xml_path = os.environ.get("XML_OUTPUT_FILE")
    if xml_path:
        with open(xml_path, "w") as out:
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
            out.write('<testsuites tests="%d" failures="%d" errors="0" disabled="0" name="AllTests">\n'
                      % (len(results), len(failures)))
            out.write('  <testsuite name="MetricQueries" tests="%d" failures="%d">\n'
                      % (len(results), len(failures)))
            for where, why in results:
                out.write('    <testcase name=%s status="run" result="completed" classname="MetricQueries"'
                          % quoteattr(where))
                if why:
                    out.write('>\n      <failure message=%s/>\n    </testcase>\n' % quoteattr(why))
                else:
                    out.write("/>\n")
            out.write("  </testsuite>\n</testsuites>\n")
    print("%d queries checked against %d exported metrics, %d failed"
          % (len(results), len(families), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
