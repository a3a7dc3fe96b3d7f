package main

import (
	"strings"
	"testing"
)

// What gflags' --helpfull prints, in its wrapping.
const helpfull = `kafka_sidecar: a gRPC sidecar for Kafka.

  Flags from sidecar/server/flags.cc:
    -allow_remote (Serve the app API on a non-loopback address.) type: bool
      default: false
    -brokers (Kafka bootstrap servers) type: string default: ""
    -health_listen (gRPC health) type: string default: "0.0.0.0:50052"
    -kafka_config (librdkafka properties, comma-separated; @file reads a file)
      type: string default: ""
    -listen (the app API) type: string default: "127.0.0.1:50051"
    -metrics_listen (Prometheus) type: string default: "0.0.0.0:9464"
    -shutdown_grace_ms (On SIGTERM) type: int32 default: 10000
    -group_instance_id (static membership) type: string default: ""

  Flags from gflags.cc:
    -flagfile (load flags from file) type: string default: ""
`

const flagsConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: sidecar-flags
data:
  sidecar.flags: |
    # a comment
    --brokers=kafka:9092
    --health_listen=0.0.0.0:50052
    # --kafka_config=@/etc/kafka-sidecar/secret/kafka.properties
`

// A Deployment that passes every sidecar check; each case below breaks one thing.
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    metadata:
      annotations:
        prometheus.io/port: "9464"
    spec:
      terminationGracePeriodSeconds: 30
      initContainers:
        - name: kafka-sidecar
          image: example.com/kafka-sidecar:1
          restartPolicy: Always
          args: ["--flagfile=/etc/kafka-sidecar/sidecar.flags", "--group_instance_id=$(POD_NAME)"]
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          ports:
            - {name: grpc-health, containerPort: 50052}
            - {name: metrics, containerPort: 9464}
          startupProbe: {grpc: {port: 50052, service: liveness}}
          livenessProbe: {grpc: {port: 50052, service: liveness}}
          readinessProbe: {grpc: {port: 50052}}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: "1", memory: 256Mi}
          securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: flags, mountPath: /etc/kafka-sidecar/sidecar.flags, subPath: sidecar.flags}
            - {name: secret, mountPath: /etc/kafka-sidecar/secret}
      containers:
        - name: app
          image: example.com/app:1
      volumes:
        - name: flags
          configMap: {name: sidecar-flags}
        - name: secret
          secret: {secretName: kafka-secret}
`

func decoded(t *testing.T, yamls ...string) *bundle {
	t.Helper()
	b := newBundle("test")
	for _, y := range yamls {
		obj, err := decodeStrict([]byte(y))
		if err != nil {
			t.Fatalf("decodeStrict: %v", err)
		}
		b.add("test.yaml", obj)
	}
	return b
}

// failures runs every sidecar check and returns "name: message" of each that failed.
func failures(t *testing.T, b *bundle) []string {
	t.Helper()
	sidecars := b.sidecars(parseHelpfull(helpfull))
	if len(sidecars) != 1 {
		t.Fatalf("%d sidecar containers, want 1", len(sidecars))
	}
	var failed []string
	for _, check := range sidecarChecks {
		if err := check.check(sidecars[0]); err != nil {
			failed = append(failed, check.name+": "+err.Error())
		}
	}
	return failed
}

func TestParseHelpfullReadsTypesAndDefaultsAcrossWrappedLines(t *testing.T) {
	flags := parseHelpfull(helpfull)
	for name, want := range map[string]flagInfo{
		"allow_remote":      {"bool", "false"},
		"brokers":           {"string", ""},
		"kafka_config":      {"string", ""},
		"listen":            {"string", "127.0.0.1:50051"},
		"shutdown_grace_ms": {"int32", "10000"},
		"flagfile":          {"string", ""},
	} {
		if got, ok := flags[name]; !ok || got != want {
			t.Errorf("%s: got %+v (listed: %v), want %+v", name, got, ok, want)
		}
	}
	if bad := flags.unknown([]string{"noallow_remote", "brokers", "nobrokers", "max-buffered-records"}); strings.Join(bad, " ") != "--nobrokers --max-buffered-records" {
		t.Errorf("unknown: %v", bad)
	}
}

func TestAGoodSidecarPassesEveryCheckWithFlagsFromItsFlagFile(t *testing.T) {
	b := decoded(t, flagsConfigMap, deployment)
	if failed := failures(t, b); len(failed) > 0 {
		t.Fatalf("failed: %v", failed)
	}
	flags, err := b.sidecars(parseHelpfull(helpfull))[0].effectiveFlags()
	if err != nil {
		t.Fatal(err)
	}
	if flags["brokers"] != "kafka:9092" || flags["listen"] != "127.0.0.1:50051" ||
		flags["group_instance_id"] != "$(POD_NAME)" {
		t.Errorf("effective flags: %v", flags)
	}
}

func TestAFileIsProvidedByTheDeepestMountAndAFlagsValueMayBeTheNextArg(t *testing.T) {
	d := strings.Replace(deployment, "          volumeMounts:\n",
		"          volumeMounts:\n            - {name: tmp, mountPath: /etc}\n", 1)
	d = strings.Replace(d, "        - name: secret\n", "        - name: tmp\n          emptyDir: {}\n        - name: secret\n", 1)
	d = strings.Replace(d, `args: ["--flagfile=/etc/kafka-sidecar/sidecar.flags",`,
		`args: ["--flagfile", "/etc/kafka-sidecar/sidecar.flags",`, 1)
	if failed := failures(t, decoded(t, flagsConfigMap, d)); len(failed) > 0 {
		t.Fatalf("failed: %v", failed)
	}
}

func TestEachBrokenSettingFailsItsCheckNamingIt(t *testing.T) {
	for _, tc := range []struct {
		configMap, deployment [2]string // replace [0] with [1]
		want                  string    // check name: message part
	}{
		{deployment: [2]string{"--group_instance_id", "--group-instance-id"},
			want: "flags_known: flags the binary does not accept: --group-instance-id"},
		{configMap: [2]string{"--brokers=kafka:9092", "brokers=kafka:9092"},
			want: "flagfile_from_configmap: test.yaml:ConfigMap/sidecar-flags key sidecar.flags has lines"},
		{deployment: [2]string{"configMap: {name: sidecar-flags}", "configMap: {name: other}"},
			want: `flagfile_from_configmap: ConfigMap "other" (mounted for /etc/kafka-sidecar/sidecar.flags) is not in test`},
		{configMap: [2]string{"# a comment", "--listen=0.0.0.0:50051"},
			want: "api_on_loopback: --listen=0.0.0.0:50051 is not loopback"},
		{deployment: [2]string{"startupProbe: {grpc: {port: 50052,", "startupProbe: {grpc: {port: 50053,"},
			want: "probe_ports_declared: startupProbe port 50053 is not a declared containerPort"},
		{configMap: [2]string{"--health_listen=0.0.0.0:50052", "--health_listen=0.0.0.0:50053"},
			want: "grpc_probes_on_health_listen: livenessProbe port 50052 differs from --health_listen=0.0.0.0:50053"},
		{deployment: [2]string{"readinessProbe: {grpc: {port: 50052}}", "readinessProbe: {grpc: {port: 50052, service: liveness}}"},
			want: `grpc_probes_on_health_listen: readinessProbe asks service "liveness", want ""`},
		{deployment: [2]string{`prometheus.io/port: "9464"`, `prometheus.io/port: "9090"`},
			want: "metrics_port: prometheus.io/port 9090 differs from --metrics_listen's port 9464"},
		{deployment: [2]string{"terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 15"},
			want: "termination_grace: terminationGracePeriodSeconds 15 is below --shutdown_grace_ms=10000 plus 10 s (20)"},
		{deployment: [2]string{"limits: {cpu: \"1\", memory: 256Mi}", "limits: {cpu: \"1\", memory: 100Mi}"},
			want: "resources: memory limit below the request"},
		{deployment: [2]string{"runAsUser: 65532", "runAsUser: 0"},
			want: "security_context: runAsUser is 0, want 65532"},
		{deployment: [2]string{"          restartPolicy: Always\n", ""},
			want: "restart_policy: an init container without restartPolicy: Always"},
		{deployment: [2]string{"- name: POD_NAME", "- name: POD"},
			want: "env_defined: $(POD_NAME) is used in args but not defined in env"},
		{deployment: [2]string{"--group_instance_id=$(POD_NAME)", "--group_instance_id=$(POD_NAME)$(ZONE)$$(ESCAPED)"},
			want: "env_defined: $(ZONE) is used in args but not defined in env"},
		{configMap: [2]string{"# a comment", "--flagfile=/etc/kafka-sidecar/sidecar.flags"},
			want: "api_on_loopback: --flagfile=/etc/kafka-sidecar/sidecar.flags: flag files nested 10 deep (a loop?)"},
		{deployment: [2]string{`args: ["--flagfile=/etc/kafka-sidecar/sidecar.flags",`, `args: ["--flagfile", "/etc/kafka-sidecar/other.flags",`},
			want: "flagfile_from_configmap: no volumeMount of container \"kafka-sidecar\" provides /etc/kafka-sidecar/other.flags"},
		{deployment: [2]string{"mountPath: /etc/kafka-sidecar/secret}", "mountPath: /etc/secret}"},
			want: "kafka_config_files_mounted: --kafka_config=@/etc/kafka-sidecar/secret/kafka.properties: no volumeMount provides that file"},
		{deployment: [2]string{"mountPath: /etc/kafka-sidecar/secret}", "mountPath: /etc/kafka-sidecar/secret}\n            - {name: flags, mountPath: /etc/kafka-sidecar/secret/inner}"},
			want: "no_nested_readonly_mounts: /etc/kafka-sidecar/secret/inner is mounted inside the read-only secret mount"},
	} {
		cm := strings.Replace(flagsConfigMap, tc.configMap[0], tc.configMap[1], 1)
		d := strings.Replace(deployment, tc.deployment[0], tc.deployment[1], 1)
		if cm == flagsConfigMap && d == deployment {
			t.Fatalf("%s: the case changes nothing", tc.want)
		}
		failed := strings.Join(failures(t, decoded(t, cm, d)), "\n")
		if !strings.Contains(failed, tc.want) {
			t.Errorf("want a failure %q, got:\n%s", tc.want, failed)
		}
	}
}

func TestAFlagFileWithAnUnknownOrCommentedOutUnknownFlagFails(t *testing.T) {
	flags := parseHelpfull(helpfull)
	if err := checkFlagFile("--brokers=a:1\n# --listen=127.0.0.1:1\n", flags); err != nil {
		t.Errorf("a good file failed: %v", err)
	}
	for text, want := range map[string]string{
		"--brokers=a:1\n--max_bufered_records=5\n": "--max_bufered_records",
		"--brokers=a:1\n# --linger=5\n":            "--linger",
		"--brokers=a:1\n--allow_remote\n":          "--allow_remote: the API must stay on loopback",
		"# only comments\n":                        "no flags",
		"--brokers=a:1\n--listen 127.0.0.1:1\n":    "--listen 127.0.0.1:1",
	} {
		if err := checkFlagFile(text, flags); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", text, err, want)
		}
	}
}

func TestTheDockerfileChecksReadTheRuntimeStage(t *testing.T) {
	stage := runtimeStage("FROM debian:12 AS build\nEXPOSE\t7\n" + `
EXPOSE 1
USER 0
FROM debian:12-slim
# a comment
RUN apt-get update && \
    apt-get install -y --no-install-recommends librdkafka1 \
      libgrpc++1.51 && rm -rf /var/lib/apt/lists/*
EXPOSE 50052 9464/tcp
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kafka_sidecar"]
`)
	if err := checkDockerfileExpose(stage, map[int]bool{50052: true, 9464: true}); err != nil {
		t.Errorf("expose: %v", err)
	}
	if err := checkDockerfileExpose(stage, map[int]bool{50052: true, 9090: true}); err == nil ||
		!strings.Contains(err.Error(), "EXPOSE [9464 50052], but the manifests use ports [9090 50052]") {
		t.Errorf("expose of other ports: %v", err)
	}
	if err := checkDockerfileUser(stage); err != nil {
		t.Errorf("user: %v", err)
	}
	if got := aptPackages(stage); len(got) != 2 || !got["librdkafka1"] || !got["libgrpc++1.51"] {
		t.Errorf("apt packages: %v", got)
	}
	if got := runtimeStage("FROM x\nEXPOSE\t9464\n"); got[1].keyword != "EXPOSE" || got[1].args != "9464" {
		t.Errorf("a tab after the keyword: %+v", got)
	}
	root := runtimeStage("FROM debian:12-slim\nUSER nobody\nENTRYPOINT [\"/kafka_sidecar\"]\n")
	if err := checkDockerfileUser(root); err == nil || !strings.Contains(err.Error(), "not numeric") {
		t.Errorf("a named user: %v", err)
	}
}

func TestAFileWithADocumentThatIsNotYAMLFails(t *testing.T) {
	if docs, err := documents([]byte("a: 1\n---\nb: 2\n")); err != nil || len(docs) != 2 {
		t.Errorf("two documents: %d, %v", len(docs), err)
	}
	if _, err := documents([]byte("a: 1\n---\nb: [2\n")); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("a broken second document: %v", err)
	}
}
