#!/usr/bin/python3
"""Keeps the Kubernetes manifests in k8s/ and the Dockerfile in step with the sidecar binary.

Run by //k8s:manifests_test (k8s/manifests_test.sh) with Debian's /usr/bin/python3, which has
python3-yaml. By hand, from the repository root:

  bazel build //sidecar:kafka_sidecar
  (cd k8s/check && go run . --root=../.. --render_to=/tmp/rendered)
  /usr/bin/python3 k8s/check_manifests.py --binary=bazel-bin/sidecar/kafka_sidecar \
    --rendered=/tmp/rendered

Each check is one test case of a JUnit XML report in gtest's shape, written to $XML_OUTPUT_FILE
when set (Bazel sets it), so tools/test.sh counts the checks. The exit code is 1 when a check
failed. The checks:

- the binary's flags, from `kafka_sidecar --helpfull`;
- flag files in ConfigMaps: one --flag=value per line, every flag known to the binary
  (commented-out `# --flag=...` lines too, so a suggestion to uncomment stays valid);
- for each sidecar container (named kafka-sidecar, or whose image says kafka-sidecar) of each
  workload, with its effective flags (the binary's defaults, then its args in order, a
  --flagfile expanded where it stands from the ConfigMap mounted at that path):
  flags in args/command known; --flagfile mounted from an existing ConfigMap key; the app API
  (--listen) on loopback and no --allow_remote; liveness (service "liveness") and readiness
  (service "") gRPC probes on --health_listen's port; every probe port a declared container
  port; --metrics_listen's port declared, not loopback, and equal to a prometheus.io/port
  annotation; terminationGracePeriodSeconds >= --shutdown_grace_ms / 1000 + 10; CPU and memory
  requests and limits; the security settings; restartPolicy: Always as an init container (a
  native sidecar); every $(VAR) in args defined in env; --kafka_config @files under a mount;
  no mount inside a read-only ConfigMap/Secret mount;
- the Dockerfile: EXPOSE equals the manifests' health and metrics ports, USER equals their
  runAsUser, and its runtime apt packages provide every shared library the binary links;
- on what k8s/check (kubecheck, Go: kustomize's API and k8s.io/api's types) rendered into
  --rendered: the rendered workloads pass the sidecar checks, and the injected Deployments have
  the sidecar as a native sidecar. Without --rendered these are reported as skipped.

That every file and rendered object decodes strictly into its Kubernetes type, and that every
kustomization renders, is kubecheck's part (//k8s:kubernetes_test), not this file's.
"""

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
from xml.sax.saxutils import quoteattr

import yaml

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
SIDECAR_NAME = "kafka-sidecar"
RUN_AS_USER = 65532
# Kubernetes' default when a pod spec does not set terminationGracePeriodSeconds.
DEFAULT_TERMINATION_GRACE_S = 30
# After the grace: leaving the groups takes up to 5 s, the last answers up to 2 s.
GRACE_MARGIN_S = 10
# Memory the sidecar was measured at with a million records waiting: 60-90 MiB. The limit must
# leave headroom above that.
MIN_MEMORY_LIMIT = 128 * 2**20
# Directories rendered with `kubectl kustomize`, and those whose Deployments must come out with
# the injected sidecar.
KUSTOMIZE_DIRS = ("k8s/example", "k8s/example-injected", "k8s/autoscaling")
INJECTED_DIRS = ("k8s/example-injected",)
# Shared libraries of sanitizer builds (--config=asan): not part of a release image.
SANITIZER_LIBS = re.compile(r"^lib(asan|ubsan|lsan|tsan|hwasan)\.so")


class CheckFailed(Exception):
    """Raised inside a check to fail it with a message."""


class Skip(Exception):
    """Raised inside a check to report it as skipped."""


class Report:
    """Runs checks, prints one line each and writes them as gtest-shaped JUnit XML."""

    def __init__(self):
        self.cases = []  # (suite, name, outcome, message, seconds)

    def check(self, suite, name, fn, *args):
        start = time.monotonic()
        outcome, message = "passed", ""
        try:
            fn(*args)
        except CheckFailed as e:
            outcome, message = "failed", str(e)
        except Skip as e:
            outcome, message = "skipped", str(e)
        except Exception as e:  # a bug in a check, or input it did not expect: a failure
            outcome, message = "failed", "%s: %s" % (type(e).__name__, e)
        seconds = time.monotonic() - start
        self.cases.append((suite, name, outcome, message, seconds))
        tag = {"passed": "[       OK ]", "failed": "[  FAILED  ]", "skipped": "[  SKIPPED ]"}
        print("%s %s.%s%s" % (tag[outcome], suite, name, (": " + message) if message else ""))

    def failures(self):
        return sum(1 for c in self.cases if c[2] == "failed")

    def write_xml(self, path):
        suites = {}
        for case in self.cases:
            suites.setdefault(case[0], []).append(case)
        total_time = sum(c[4] for c in self.cases)
        lines = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<testsuites tests="%d" failures="%d" disabled="0" errors="0" time="%.3f" '
                 'name="AllTests">' % (len(self.cases), self.failures(), total_time)]
        for suite, cases in suites.items():
            lines.append(
                '  <testsuite name=%s tests="%d" failures="%d" disabled="0" skipped="%d" '
                'errors="0" time="%.3f">' % (
                    quoteattr(suite), len(cases), sum(1 for c in cases if c[2] == "failed"),
                    sum(1 for c in cases if c[2] == "skipped"), sum(c[4] for c in cases)))
            for _, name, outcome, message, seconds in cases:
                result = "skipped" if outcome == "skipped" else "completed"
                head = '    <testcase name=%s status="run" result="%s" time="%.3f" classname=%s' % (
                    quoteattr(name), result, seconds, quoteattr(suite))
                if outcome == "failed":
                    lines.append(head + ">")
                    lines.append('      <failure message=%s type=""><![CDATA[%s]]></failure>' % (
                        quoteattr(message), message.replace("]]>", "]]]]><![CDATA[>")))
                    lines.append("    </testcase>")
                elif outcome == "skipped":
                    lines.append(head + ">")
                    lines.append("      <skipped message=%s/>" % quoteattr(message))
                    lines.append("    </testcase>")
                else:
                    lines.append(head + "/>")
            lines.append("  </testsuite>")
        lines.append("</testsuites>")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


# ---------------------------------------------------------------------------------------------
# The binary's flags.

class BinaryFlags:
    """Flags of the sidecar binary, from --helpfull: name -> (type, default)."""

    def __init__(self, binary):
        self.binary = binary
        self.flags = {}
        self.error = None

    def load(self):
        if not self.binary or not os.path.exists(self.binary):
            self.error = "sidecar binary not found (%s)" % self.binary
            raise CheckFailed(self.error)
        # --helpfull prints every flag and exits 1 (gflags' convention); the output is what counts.
        proc = subprocess.run([self.binary, "--helpfull"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120, universal_newlines=True)
        self.flags = parse_helpfull(proc.stdout)
        if "brokers" not in self.flags or "flagfile" not in self.flags:
            self.error = ("`%s --helpfull` listed no --brokers or --flagfile (exit %d); its "
                          "output starts: %s" % (self.binary, proc.returncode, proc.stdout[:300]))
            self.flags = {}
            raise CheckFailed(self.error)

    def require(self):
        if not self.flags:
            raise CheckFailed("the binary's flags are unknown: %s" % self.error)

    def unknown(self, names):
        """The names gflags would reject (it also takes --noNAME for a bool NAME)."""
        self.require()
        bad = []
        for name in names:
            if name in self.flags:
                continue
            if name.startswith("no") and self.flags.get(name[2:], ("",))[0] == "bool":
                continue
            bad.append(name)
        return bad

    def defaults(self):
        self.require()
        return {name: default for name, (_, default) in self.flags.items()}


def parse_helpfull(text):
    """gflags' help: `    -name (description...) type: T default: D`, wrapped over lines."""
    flags = {}
    current, block = None, []

    def finish():
        if current is None:
            return
        joined = " ".join(block)
        m = re.search(r"type: (\S+)\s+default: (.*)$", joined)
        if m:
            default = m.group(2).strip()
            # A string flag's default is quoted; the text may go on after it (currently: ...).
            q = re.match(r'^"(.*?)"(\s|$)', default)
            if q:
                default = q.group(1)
            else:
                default = default.split()[0] if default else ""
            flags[current] = (m.group(1), default)
        else:
            flags[current] = ("", "")

    for line in text.splitlines():
        m = re.match(r"^    -([A-Za-z0-9_]+) \(", line)
        if m:
            finish()
            current, block = m.group(1), [line.strip()]
        elif re.match(r"^\s*Flags from ", line) or not line.strip():
            finish()
            current, block = None, []
        elif current is not None:
            block.append(line.strip())
    finish()
    return flags


def flag_tokens(items):
    """(name, value or None) for each -name / --name[=value] in a list of args."""
    out = []
    for item in items or []:
        item = str(item)
        m = re.match(r"^--?([A-Za-z][A-Za-z0-9_]*)(?:=(.*))?$", item, re.S)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def flag_file_lines(text):
    """(active, commented, malformed): active --flag lines, `# --flag` lines, other lines."""
    active, commented, malformed = [], [], []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            rest = line.lstrip("#").strip()
            if re.match(r"^--[A-Za-z]", rest) and " " not in rest.split("=", 1)[0]:
                commented.append(rest)
            continue
        if line.startswith("-"):
            active.append(line)
        else:
            malformed.append(line)
    return active, commented, malformed


# ---------------------------------------------------------------------------------------------
# Manifests.

class Doc:
    def __init__(self, source, body):
        self.source = source  # where it came from, for messages: a path or "rendered:<dir>"
        self.body = body

    @property
    def kind(self):
        return self.body.get("kind")

    @property
    def name(self):
        return (self.body.get("metadata") or {}).get("name")

    def label(self):
        return "%s:%s/%s" % (self.source, self.kind, self.name)


class Bundle:
    """Documents that go to a cluster together: one directory, or one kustomize output."""

    def __init__(self, label, docs):
        self.label = label
        self.docs = docs

    def configmap(self, name):
        for d in self.docs:
            if d.kind == "ConfigMap" and d.name == name:
                return d
        return None

    def workloads(self):
        return [d for d in self.docs if d.kind in WORKLOAD_KINDS]


def pod_spec(doc):
    spec = doc.body.get("spec") or {}
    if doc.kind == "Pod":
        return spec
    return ((spec.get("template") or {}).get("spec")) or {}


def pod_annotations(doc):
    spec = doc.body.get("spec") or {}
    return (((spec.get("template") or {}).get("metadata") or {}).get("annotations")) or {}


def is_sidecar(container):
    if container.get("name") == SIDECAR_NAME:
        return True
    if SIDECAR_NAME in str(container.get("image", "")):
        return True
    return any("kafka_sidecar" in str(c) for c in (container.get("command") or [])[:1])


def sidecar_containers(doc):
    """(container, is_init) for each sidecar container of a workload."""
    spec = pod_spec(doc)
    out = [(c, True) for c in spec.get("initContainers") or [] if is_sidecar(c)]
    out += [(c, False) for c in spec.get("containers") or [] if is_sidecar(c)]
    return out


def parse_address(value):
    """host, port (int or None) of `host:port`, `[v6]:port` or `unix:/path`."""
    if value is None or value == "" or value.startswith("unix:"):
        return value, None
    m = re.match(r"^\[(.*)\]:(\d+)$", value) or re.match(r"^([^:]*):(\d+)$", value)
    if not m:
        return value, None
    return m.group(1), int(m.group(2))


def is_loopback(host):
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_quantity(value):
    """A Kubernetes quantity as a float (bytes for memory, cores for CPU)."""
    m = re.match(r"^([0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$", str(value))
    if not m:
        raise CheckFailed("cannot read the quantity %r" % value)
    factor = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
              "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    return float(m.group(1)) * factor[m.group(2)]


class SidecarView:
    """One sidecar container of one workload, with its flags resolved."""

    def __init__(self, bundle, doc, container, is_init, binary_flags):
        self.bundle = bundle
        self.doc = doc
        self.container = container
        self.is_init = is_init
        self.binary_flags = binary_flags
        self.spec = pod_spec(doc)

    def volumes(self):
        return {v.get("name"): v for v in self.spec.get("volumes") or []}

    def mounts(self):
        return self.container.get("volumeMounts") or []

    def args(self):
        return [str(a) for a in (self.container.get("command") or [])[1:]] + \
               [str(a) for a in self.container.get("args") or []]

    def resolve_file(self, path):
        """(text, where) of a file the container sees at `path`, from a ConfigMap mount."""
        volumes = self.volumes()
        for mount in self.mounts():
            volume = volumes.get(mount.get("name"))
            if volume is None:
                raise CheckFailed("volumeMount %r names no volume" % mount.get("name"))
            mount_path = mount.get("mountPath", "").rstrip("/")
            sub_path = mount.get("subPath")
            if sub_path is not None:
                if path != mount_path:
                    continue
                rel = sub_path
            else:
                if not path.startswith(mount_path + "/"):
                    continue
                rel = path[len(mount_path) + 1:]
            if "configMap" not in volume:
                raise CheckFailed("%s is mounted from volume %r, not a ConfigMap" % (
                    path, volume.get("name")))
            cm_name = volume["configMap"].get("name")
            items = volume["configMap"].get("items")
            key = rel
            if items:
                keys = [i.get("key") for i in items if i.get("path") == rel]
                if not keys:
                    raise CheckFailed("volume %r's items do not include %s" % (
                        volume.get("name"), rel))
                key = keys[0]
            cm = self.bundle.configmap(cm_name)
            if cm is None:
                raise CheckFailed("ConfigMap %r (mounted for %s) is not in %s" % (
                    cm_name, path, self.bundle.label))
            data = cm.body.get("data") or {}
            if key not in data:
                raise CheckFailed("ConfigMap %r has no key %r (for %s)" % (cm_name, key, path))
            return data[key], "%s key %s" % (cm.label(), key)
        raise CheckFailed("no volumeMount of container %r provides %s" % (
            self.container.get("name"), path))

    def flagfiles(self):
        return [v for n, v in flag_tokens(self.args()) if n == "flagfile"]

    def effective_flags(self):
        """The binary's defaults, then the args in order with each --flagfile expanded."""
        flags = dict(self.binary_flags.defaults())
        types = self.binary_flags.flags

        def apply(tokens):
            for i, item in enumerate(tokens):
                m = re.match(r"^--?([A-Za-z][A-Za-z0-9_]*)(?:=(.*))?$", item, re.S)
                if not m:
                    continue
                name, value = m.group(1), m.group(2)
                if name == "flagfile":
                    text, _ = self.resolve_file(value)
                    active, _, _ = flag_file_lines(text)
                    apply(active)
                    continue
                if value is None:
                    if types.get(name, ("",))[0] == "bool":
                        value = "true"
                    elif name.startswith("no") and types.get(name[2:], ("",))[0] == "bool":
                        name, value = name[2:], "false"
                    elif i + 1 < len(tokens):
                        value = tokens[i + 1]
                flags[name] = value

        apply(self.args())
        return flags

    def commented_flag_lines(self):
        out = []
        for path in self.flagfiles():
            try:
                text, _ = self.resolve_file(path)
            except CheckFailed:
                continue
            out += flag_file_lines(text)[1]
        return out

    def label(self):
        return "%s/%s" % (self.doc.label(), self.container.get("name"))

    # -- the checks ----------------------------------------------------------------------------

    def check_flags_known(self):
        names = [n for n, _ in flag_tokens(self.args())]
        expect(names, "no --flag in args or command")
        bad = self.binary_flags.unknown(names)
        expect(not bad, "flags the binary does not accept: %s" % ", ".join("--" + b for b in bad))

    def check_flagfile_mounted(self):
        paths = self.flagfiles()
        expect(paths, "no --flagfile in args: operators tune flags in the ConfigMap")
        for path in paths:
            text, where = self.resolve_file(path)
            active, _, malformed = flag_file_lines(text)
            expect(not malformed, "%s has lines that are neither --flag nor # comment: %r" % (
                where, malformed[:3]))

    def check_api_on_loopback(self):
        flags = self.effective_flags()
        listen = flags.get("listen")
        host, _ = parse_address(listen)
        expect(listen.startswith("unix:") or is_loopback(host),
               "--listen=%s is not loopback: the app API must stay inside the pod" % listen)
        expect(str(flags.get("allow_remote", "false")).lower() in ("false", "0", ""),
               "--allow_remote is set: the manifests keep the API on 127.0.0.1:50051")

    def declared_ports(self):
        ports = self.container.get("ports") or []
        return {p.get("containerPort") for p in ports}, {p.get("name"): p.get("containerPort")
                                                          for p in ports if p.get("name")}

    def probe_port(self, probe):
        for kind in ("grpc", "httpGet", "tcpSocket"):
            if kind in probe:
                return kind, probe[kind].get("port")
        return None, None

    def check_probe_ports_declared(self):
        numbers, names = self.declared_ports()
        probes = [(k, self.container.get(k)) for k in ("livenessProbe", "readinessProbe",
                                                       "startupProbe") if self.container.get(k)]
        expect(probes, "no probes")
        for key, probe in probes:
            kind, port = self.probe_port(probe)
            if kind is None:
                continue  # exec probes have no port
            if isinstance(port, str) and not port.isdigit():
                expect(port in names, "%s port %r is not a declared port name (%s)" % (
                    key, port, sorted(names)))
            else:
                expect(int(port) in numbers, "%s port %s is not a declared containerPort (%s)" % (
                    key, port, sorted(n for n in numbers if n is not None)))

    def check_grpc_probes_on_health_listen(self):
        health = self.effective_flags().get("health_listen")
        _, port = parse_address(health)
        expect(port is not None, "--health_listen is not set to host:port (%r)" % health)
        names = self.declared_ports()[1]
        for key, service in (("livenessProbe", "liveness"), ("readinessProbe", "")):
            probe = self.container.get(key)
            expect(probe, "no %s" % key)
            expect("grpc" in probe, "%s is not a gRPC probe" % key)
            probe_port = probe["grpc"].get("port")
            probe_port = names.get(probe_port, probe_port)
            expect(probe_port == port, "%s port %s differs from --health_listen=%s" % (
                key, probe_port, health))
            got = probe["grpc"].get("service") or ""
            expect(got == service, "%s asks service %r, want %r" % (key, got, service))
        startup = self.container.get("startupProbe")
        if startup and "grpc" in startup:
            got = names.get(startup["grpc"].get("port"), startup["grpc"].get("port"))
            expect(got == port, "startupProbe port %s differs from --health_listen=%s" % (
                got, health))

    def check_metrics_port(self):
        metrics = self.effective_flags().get("metrics_listen")
        host, port = parse_address(metrics)
        expect(port is not None, "--metrics_listen is not set to host:port (%r)" % metrics)
        expect(not is_loopback(host), "--metrics_listen=%s is loopback: nothing outside the pod "
               "can scrape it" % metrics)
        numbers, names = self.declared_ports()
        expect(port in numbers, "--metrics_listen port %d is not a declared containerPort" % port)
        expect(names.get("metrics") == port, "the container port named 'metrics' is %s, not %d" % (
            names.get("metrics"), port))
        annotated = pod_annotations(self.doc).get("prometheus.io/port")
        if annotated is not None:
            expect(str(annotated) == str(port), "prometheus.io/port %s differs from "
                   "--metrics_listen's port %d" % (annotated, port))

    def check_termination_grace(self):
        grace_ms = int(self.effective_flags().get("shutdown_grace_ms"))
        period = self.spec.get("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_S)
        need = grace_ms / 1000.0 + GRACE_MARGIN_S
        expect(period >= need, "terminationGracePeriodSeconds %s is below --shutdown_grace_ms=%d "
               "plus %d s (%g)" % (period, grace_ms, GRACE_MARGIN_S, need))

    def check_resources(self):
        resources = self.container.get("resources") or {}
        for part in ("requests", "limits"):
            for what in ("cpu", "memory"):
                expect(what in (resources.get(part) or {}), "no resources.%s.%s" % (part, what))
        request = parse_quantity(resources["requests"]["memory"])
        limit = parse_quantity(resources["limits"]["memory"])
        expect(limit >= request, "memory limit below the request")
        expect(limit >= MIN_MEMORY_LIMIT, "memory limit %s leaves no headroom over the measured "
               "60-90 MiB (want >= 128Mi)" % resources["limits"]["memory"])
        expect(parse_quantity(resources["limits"]["cpu"]) >=
               parse_quantity(resources["requests"]["cpu"]), "cpu limit below the request")

    def check_security_context(self):
        pod = self.spec.get("securityContext") or {}
        ctx = self.container.get("securityContext") or {}

        def effective(key):
            return ctx[key] if key in ctx else pod.get(key)

        expect(effective("runAsNonRoot") is True, "runAsNonRoot is not true")
        user = effective("runAsUser")
        expect(isinstance(user, int), "runAsUser is not a number (%r)" % user)
        expect(user == RUN_AS_USER, "runAsUser is %s, want %d (the image's USER)" % (
            user, RUN_AS_USER))
        expect(ctx.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
        expect(ctx.get("allowPrivilegeEscalation") is False,
               "allowPrivilegeEscalation is not false")
        drop = ((ctx.get("capabilities") or {}).get("drop")) or []
        expect("ALL" in drop, "capabilities.drop does not include ALL")
        expect(not ((ctx.get("capabilities") or {}).get("add")), "capabilities are added")
        expect(ctx.get("privileged") is not True, "privileged")

    def check_restart_policy(self):
        policy = self.container.get("restartPolicy")
        if self.is_init:
            expect(policy == "Always", "an init container without restartPolicy: Always (a native "
                   "sidecar) would block the app forever; it has %r" % policy)
        else:
            expect(policy is None, "restartPolicy %r on a regular container" % policy)

    def check_env_defined(self):
        env = {e.get("name"): e for e in self.container.get("env") or []}
        used = set()
        for arg in self.args():
            used.update(re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg))
        for name in sorted(used):
            expect(name in env, "$(%s) is used in args but not defined in env" % name)
        if "POD_NAME" in env:
            ref = ((env["POD_NAME"].get("valueFrom") or {}).get("fieldRef") or {})
            expect(ref.get("fieldPath") == "metadata.name",
                   "POD_NAME does not come from the downward API metadata.name")

    def check_kafka_config_files_mounted(self):
        values = [self.effective_flags().get("kafka_config") or ""]
        values += [l.split("=", 1)[1] for l in self.commented_flag_lines()
                   if l.startswith("--kafka_config=")]
        volumes = self.volumes()
        for value in values:
            for item in value.split(","):
                item = item.strip()
                if not item.startswith("@"):
                    continue
                path = item[1:]
                ok = False
                for mount in self.mounts():
                    mount_path = mount.get("mountPath", "").rstrip("/")
                    volume = volumes.get(mount.get("name")) or {}
                    if mount.get("subPath") is None and path.startswith(mount_path + "/"):
                        expect("secret" in volume or "projected" in volume or
                               "configMap" in volume,
                               "%s is on volume %r, not a Secret" % (path, mount.get("name")))
                        ok = True
                    elif mount.get("subPath") is not None and path == mount_path:
                        ok = True
                expect(ok, "--kafka_config=@%s: no volumeMount provides that file" % path)

    def check_no_nested_readonly_mounts(self):
        volumes = self.volumes()
        mounts = self.mounts()
        for outer in mounts:
            volume = volumes.get(outer.get("name")) or {}
            if outer.get("subPath") is not None:
                continue
            if not any(k in volume for k in ("configMap", "secret", "projected", "downwardAPI")):
                continue
            base = outer.get("mountPath", "").rstrip("/") + "/"
            for inner in mounts:
                expect(not inner.get("mountPath", "").startswith(base),
                       "%s is mounted inside the read-only %s mount %s" % (
                           inner.get("mountPath"), outer.get("name"), outer.get("mountPath")))


SIDECAR_CHECKS = [
    ("flags_known", SidecarView.check_flags_known),
    ("flagfile_from_configmap", SidecarView.check_flagfile_mounted),
    ("api_on_loopback", SidecarView.check_api_on_loopback),
    ("probe_ports_declared", SidecarView.check_probe_ports_declared),
    ("grpc_probes_on_health_listen", SidecarView.check_grpc_probes_on_health_listen),
    ("metrics_port", SidecarView.check_metrics_port),
    ("termination_grace", SidecarView.check_termination_grace),
    ("resources", SidecarView.check_resources),
    ("security_context", SidecarView.check_security_context),
    ("restart_policy", SidecarView.check_restart_policy),
    ("env_defined", SidecarView.check_env_defined),
    ("kafka_config_files_mounted", SidecarView.check_kafka_config_files_mounted),
    ("no_nested_readonly_mounts", SidecarView.check_no_nested_readonly_mounts),
]


def check_bundle(report, bundle, binary_flags, suite, seen):
    """The flag-file and sidecar checks of one bundle. `seen` collects (health, metrics) ports."""
    for doc in bundle.docs:
        if doc.kind != "ConfigMap":
            continue
        for key, text in (doc.body.get("data") or {}).items():
            if not key.endswith(".flags"):
                continue

            def flag_file(text=text):
                active, commented, malformed = flag_file_lines(str(text))
                expect(not malformed, "lines that are neither --flag=value nor # comment "
                       "(gflags would read them as program names): %r" % malformed[:3])
                expect(active, "no flags")
                names = [n for n, _ in flag_tokens(active + commented)]
                bad = binary_flags.unknown(names)
                expect(not bad, "flags the binary does not accept: %s" % ", ".join(
                    "--" + b for b in bad))
                expect("allow_remote" not in [n for n, _ in flag_tokens(active)],
                       "--allow_remote: the API must stay on loopback")

            report.check(suite, "flag_file/%s/%s" % (doc.label(), key), flag_file)

    for doc in bundle.workloads():
        for container, is_init in sidecar_containers(doc):
            view = SidecarView(bundle, doc, container, is_init, binary_flags)
            for name, fn in SIDECAR_CHECKS:
                report.check(suite, "%s/%s" % (name, view.label()), fn, view)
            try:
                flags = view.effective_flags()
                seen.append((view.label(), parse_address(flags.get("health_listen"))[1],
                             parse_address(flags.get("metrics_listen"))[1]))
            except Exception:
                pass  # the checks above report it


# ---------------------------------------------------------------------------------------------
# The Dockerfile.

def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        parts = line.split(None, 1)
        out.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
    return out


def runtime_stage(instructions):
    stages = [[]]
    for ins in instructions:
        if ins[0] == "FROM":
            stages.append([])
        stages[-1].append(ins)
    return stages[-1]


def check_dockerfile_expose(dockerfile, seen):
    expect(seen, "no sidecar container with --health_listen/--metrics_listen ports was checked")
    stage = runtime_stage(dockerfile_instructions(open(dockerfile).read()))
    exposed = set()
    for ins, args in stage:
        if ins == "EXPOSE":
            exposed.update(int(p.split("/")[0]) for p in args.split())
    wanted = set()
    for label, health, metrics in seen:
        expect(health is not None and metrics is not None,
               "%s: no health or metrics port" % label)
        wanted.update((health, metrics))
    expect(exposed == wanted, "EXPOSE %s, but the manifests use ports %s" % (
        " ".join(map(str, sorted(exposed))) or "(none)", " ".join(map(str, sorted(wanted)))))


def check_dockerfile_user(dockerfile):
    stage = runtime_stage(dockerfile_instructions(open(dockerfile).read()))
    users = [args.strip() for ins, args in stage if ins == "USER"]
    expect(users, "the runtime stage sets no USER")
    uid = users[-1].split(":")[0]
    expect(uid.isdigit(), "USER %s is not numeric: runAsNonRoot needs a numeric user" % users[-1])
    expect(int(uid) == RUN_AS_USER, "USER %s differs from the manifests' runAsUser %d" % (
        uid, RUN_AS_USER))
    entry = [args for ins, args in stage if ins == "ENTRYPOINT"]
    expect(entry and "kafka_sidecar" in entry[-1] and "kafka_sidecar_cli" not in entry[-1],
           "ENTRYPOINT is not the sidecar: %r" % entry)


def apt_packages(stage):
    packages = set()
    for ins, args in stage:
        if ins != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", args):
            words = command.split()
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                packages.update(w for w in after if not w.startswith("-"))
    return packages


def check_dockerfile_packages(dockerfile, binary):
    if not shutil.which("ldd") or not shutil.which("dpkg"):
        raise Skip("ldd or dpkg is missing: not a Debian machine")
    expect(binary and os.path.exists(binary), "sidecar binary not found (%s)" % binary)
    stage = runtime_stage(dockerfile_instructions(open(dockerfile).read()))
    listed = apt_packages(stage)
    expect(listed, "the runtime stage installs no apt packages")
    proc = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, universal_newlines=True)
    expect(proc.returncode == 0, "ldd failed: %s" % proc.stdout[:300])
    libs = []
    for line in proc.stdout.splitlines():
        m = re.match(r"^\s*(\S+) => (/\S+)", line)
        if not m or SANITIZER_LIBS.match(m.group(1)):
            continue
        expect(m.group(2).startswith(("/lib", "/usr/lib")),
               "%s comes from %s, not a system library" % (m.group(1), m.group(2)))
        libs.append(m.group(2))
    expect(libs, "ldd listed no libraries")
    # One dpkg -S for all of them (it is slow to start). With usrmerge /lib is /usr/lib, and dpkg
    # knows only the path the package shipped: ask for each spelling.
    spellings = {}
    for lib in libs:
        real = os.path.realpath(lib)
        spellings[lib] = []
        for path in (lib, real):
            for c in (path, "/usr" + path if path.startswith("/lib") else path,
                      path[4:] if path.startswith("/usr/") else path):
                if c not in spellings[lib]:
                    spellings[lib].append(c)
    proc = subprocess.run(["dpkg", "-S"] + sorted({c for cs in spellings.values() for c in cs}),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120,
                          universal_newlines=True)
    owners = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^([^:,\s]+)(?::[^:\s]+)?(?:, [^:]+)?: (/.*)$", line)
        if m:
            owners[m.group(2)] = m.group(1)
    missing = {}
    for lib in libs:
        owner = next((owners[c] for c in spellings[lib] if c in owners), None)
        expect(owner, "no Debian package owns %s" % lib)
        if owner not in listed and owner != "libc6":  # libc6 comes with debian:12-slim
            missing.setdefault(owner, []).append(os.path.basename(lib))
    expect(not missing, "the runtime stage does not install %s" % "; ".join(
        "%s (%s)" % (p, ", ".join(sorted(set(l)))) for p, l in sorted(missing.items())))


# ---------------------------------------------------------------------------------------------
# kustomize.

def load_rendered(rendered_dir, directory):
    """The bundle kubecheck rendered for `directory` (k8s/check, --render_to)."""
    path = os.path.join(rendered_dir, directory.replace("/", "_") + ".yaml")
    expect(os.path.isfile(path), "%s was not rendered (kubecheck failed to render it?)" % directory)
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    expect(docs, "rendered nothing")
    return Bundle("rendered:" + directory, [Doc("rendered:" + directory, d) for d in docs])


def check_injected(bundle):
    deployments = [d for d in bundle.docs if d.kind == "Deployment"]
    expect(deployments, "no Deployment rendered")
    for doc in deployments:
        inits = pod_spec(doc).get("initContainers") or []
        sidecars = [c for c in inits if c.get("name") == SIDECAR_NAME]
        expect(sidecars, "%s has no %s init container" % (doc.label(), SIDECAR_NAME))
        expect(sidecars[0].get("restartPolicy") == "Always",
               "%s: the injected sidecar has no restartPolicy: Always" % doc.label())
        names = [c.get("name") for c in pod_spec(doc).get("containers") or []]
        expect(SIDECAR_NAME not in names, "%s also has a regular %s container" % (
            doc.label(), SIDECAR_NAME))
        expect(any(n != SIDECAR_NAME for n in names), "%s lost its app container" % doc.label())
    expect(any(d.kind == "ConfigMap" for d in bundle.docs), "no ConfigMap rendered")


# ---------------------------------------------------------------------------------------------

def find_root(explicit):
    candidates = [explicit] if explicit else []
    if os.environ.get("TEST_SRCDIR"):
        candidates.append(os.path.join(os.environ["TEST_SRCDIR"],
                                       os.environ.get("TEST_WORKSPACE", "kafka_sidecar")))
    candidates += [os.getcwd(), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    for c in candidates:
        if c and os.path.isdir(os.path.join(c, "k8s")):
            return c
    sys.exit("check_manifests: cannot find the k8s/ folder (tried %s)" % candidates)


def find_dockerfile(root):
    """The Dockerfile: a runfile under Bazel (//:Dockerfile), else at the repository root."""
    return os.path.join(root, "Dockerfile")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="the repository (or runfiles) root holding k8s/")
    parser.add_argument("--binary", help="the kafka_sidecar binary (default: <root>/sidecar/"
                        "kafka_sidecar, then <root>/bazel-bin/sidecar/kafka_sidecar)")
    parser.add_argument("--rendered", help="the folder kubecheck --render_to wrote the rendered "
                        "kustomizations to")
    args = parser.parse_args()
    root = find_root(args.root)
    binary = args.binary
    if not binary:
        for c in ("sidecar/kafka_sidecar", "bazel-bin/sidecar/kafka_sidecar"):
            if os.path.isfile(os.path.join(root, c)):
                binary = os.path.join(root, c)
                break
    print("check_manifests: root %s, binary %s" % (root, binary))
    report = Report()

    # YAML files, grouped by folder (kubecheck decodes each strictly).
    by_dir = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "k8s")):
        dirnames.sort()
        for filename in sorted(filenames):
            if not filename.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(dirpath, filename)
            with open(path) as f:
                for d in yaml.safe_load_all(f):
                    if isinstance(d, dict) and d.get("kind") not in ("Kustomization", "Component"):
                        by_dir.setdefault(os.path.relpath(dirpath, root), []).append(
                            Doc(os.path.relpath(path, root), d))

    binary_flags = BinaryFlags(binary)
    report.check("Binary", "helpfull_lists_flags", binary_flags.load)

    seen = []
    for directory in sorted(by_dir):
        check_bundle(report, Bundle(directory, by_dir[directory]), binary_flags, "Manifests",
                     seen)

    dockerfile = find_dockerfile(root)
    print("check_manifests: Dockerfile %s" % dockerfile)
    report.check("Dockerfile", "expose_matches_manifests", check_dockerfile_expose,
                 dockerfile, seen)
    report.check("Dockerfile", "user_and_entrypoint", check_dockerfile_user, dockerfile)
    report.check("Dockerfile", "runtime_packages_cover_ldd", check_dockerfile_packages,
                 dockerfile, binary)

    for directory in KUSTOMIZE_DIRS:
        rendered = {}

        def do_load(directory=directory, rendered=rendered):
            if not args.rendered:
                raise Skip("no --rendered folder (run k8s/check's kubecheck --render_to first)")
            rendered["bundle"] = load_rendered(args.rendered, directory)

        report.check("Kustomize", "rendered/" + directory, do_load)
        bundle = rendered.get("bundle")
        if directory in INJECTED_DIRS:
            def injected(bundle=bundle):
                if not args.rendered:
                    raise Skip("no --rendered folder")
                expect(bundle is not None, "%s was not rendered" % directory)
                check_injected(bundle)

            report.check("Kustomize", "sidecar_injected/" + directory, injected)
        if bundle is not None:
            check_bundle(report, bundle, binary_flags, "Kustomize", [])

    out = os.environ.get("XML_OUTPUT_FILE")
    if out:
        report.write_xml(out)
    failed = report.failures()
    skipped = sum(1 for c in report.cases if c[2] == "skipped")
    print("check_manifests: %d checks, %d passed, %d failed, %d skipped" % (
        len(report.cases), len(report.cases) - failed - skipped, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
