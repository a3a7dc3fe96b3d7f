package main

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	sidecarName = "kafka-sidecar"
	// The image's USER (the Dockerfile) and the manifests' runAsUser.
	runAsUser = 65532
	// Kubernetes' default when a pod spec does not set terminationGracePeriodSeconds.
	defaultTerminationGraceS = 30
	// After --shutdown_grace_ms: leaving the groups takes up to 5 s, the last answers up to 2 s.
	graceMarginS = 10
)

// The sidecar was measured at 60-90 MiB resident with a million records waiting: its memory
// limit must leave headroom above that.
var minMemoryLimit = resource.MustParse("128Mi")

// The checks of one sidecar container, each a test case.
var sidecarChecks = []struct {
	name  string
	check func(*sidecar) error
}{
	{"flags_known", (*sidecar).checkFlagsKnown},
	{"flagfile_from_configmap", (*sidecar).checkFlagfileMounted},
	{"api_on_loopback", (*sidecar).checkAPIOnLoopback},
	{"probe_ports_declared", (*sidecar).checkProbePortsDeclared},
	{"grpc_probes_on_health_listen", (*sidecar).checkGRPCProbesOnHealthListen},
	{"metrics_port", (*sidecar).checkMetricsPort},
	{"termination_grace", (*sidecar).checkTerminationGrace},
	{"resources", (*sidecar).checkResources},
	{"security_context", (*sidecar).checkSecurityContext},
	{"restart_policy", (*sidecar).checkRestartPolicy},
	{"env_defined", (*sidecar).checkEnvDefined},
	{"kafka_config_files_mounted", (*sidecar).checkKafkaConfigFilesMounted},
	{"no_nested_readonly_mounts", (*sidecar).checkNoNestedReadOnlyMounts},
}

func (s *sidecar) checkFlagsKnown() error {
	names := flagNames(s.args())
	if len(names) == 0 {
		return errors.New("no --flag in args or command")
	}
	if bad := s.flags.unknown(names); len(bad) > 0 {
		return fmt.Errorf("flags the binary does not accept: %s", strings.Join(bad, ", "))
	}
	return nil
}

func (s *sidecar) checkFlagfileMounted() error {
	paths := s.flagfiles()
	if len(paths) == 0 {
		return errors.New("no --flagfile in args: operators tune flags in the ConfigMap")
	}
	for _, path := range paths {
		text, where, err := s.resolveFile(path)
		if err != nil {
			return err
		}
		if bad := parseFlagFile(text).malformed; len(bad) > 0 {
			return fmt.Errorf("%s has lines that are neither --flag nor # comment: %q", where, bad)
		}
	}
	return nil
}

func (s *sidecar) checkAPIOnLoopback() error {
	flags, err := s.effectiveFlags()
	if err != nil {
		return err
	}
	listen := flags["listen"]
	if host, _ := splitAddress(listen); !strings.HasPrefix(listen, "unix:") && !isLoopback(host) {
		return fmt.Errorf("--listen=%s is not loopback: the app API must stay inside the pod", listen)
	}
	if !isFalse(flags["allow_remote"]) {
		return errors.New("--allow_remote is set: the manifests keep the API on 127.0.0.1:50051")
	}
	return nil
}

// portNumber returns the container port a probe's port names (a number, or a declared name).
func (s *sidecar) portNumber(port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	for _, p := range s.c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q is not a declared port name", port.StrVal)
}

func (s *sidecar) declaredPorts() []int32 {
	var ports []int32
	for _, p := range s.c.Ports {
		ports = append(ports, p.ContainerPort)
	}
	return ports
}

func (s *sidecar) declares(port int) bool {
	return slices.ContainsFunc(s.c.Ports, func(p corev1.ContainerPort) bool {
		return int(p.ContainerPort) == port
	})
}

func (s *sidecar) probes() map[string]*corev1.Probe {
	probes := map[string]*corev1.Probe{}
	for name, p := range map[string]*corev1.Probe{"livenessProbe": s.c.LivenessProbe,
		"readinessProbe": s.c.ReadinessProbe, "startupProbe": s.c.StartupProbe} {
		if p != nil {
			probes[name] = p
		}
	}
	return probes
}

func (s *sidecar) checkProbePortsDeclared() error {
	probes := s.probes()
	if len(probes) == 0 {
		return errors.New("no probes")
	}
	for _, name := range slices.Sorted(maps.Keys(probes)) {
		var port intstr.IntOrString
		switch h := probes[name].ProbeHandler; {
		case h.GRPC != nil:
			port = intstr.FromInt32(h.GRPC.Port)
		case h.HTTPGet != nil:
			port = h.HTTPGet.Port
		case h.TCPSocket != nil:
			port = h.TCPSocket.Port
		default:
			continue // exec probes have no port
		}
		n, err := s.portNumber(port)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !s.declares(n) {
			return fmt.Errorf("%s port %d is not a declared containerPort (%v)", name, n, s.declaredPorts())
		}
	}
	return nil
}

func (s *sidecar) checkGRPCProbesOnHealthListen() error {
	flags, err := s.effectiveFlags()
	if err != nil {
		return err
	}
	health := flags["health_listen"]
	_, port := splitAddress(health)
	if port < 0 {
		return fmt.Errorf("--health_listen is not host:port (%q)", health)
	}
	onPort := func(name string, probe *corev1.Probe) error {
		if int(probe.GRPC.Port) != port {
			return fmt.Errorf("%s port %d differs from --health_listen=%s", name, probe.GRPC.Port, health)
		}
		return nil
	}
	// Liveness asks for the service "liveness" (the process runs), readiness for "" (Kafka
	// reachable, not draining).
	for _, p := range []struct {
		name, service string
		probe         *corev1.Probe
	}{{"livenessProbe", "liveness", s.c.LivenessProbe}, {"readinessProbe", "", s.c.ReadinessProbe}} {
		switch {
		case p.probe == nil:
			return fmt.Errorf("no %s", p.name)
		case p.probe.GRPC == nil:
			return fmt.Errorf("%s is not a gRPC probe", p.name)
		}
		if err := onPort(p.name, p.probe); err != nil {
			return err
		}
		service := ""
		if p.probe.GRPC.Service != nil {
			service = *p.probe.GRPC.Service
		}
		if service != p.service {
			return fmt.Errorf("%s asks service %q, want %q", p.name, service, p.service)
		}
	}
	if startup := s.c.StartupProbe; startup != nil && startup.GRPC != nil {
		return onPort("startupProbe", startup)
	}
	return nil
}

func (s *sidecar) checkMetricsPort() error {
	flags, err := s.effectiveFlags()
	if err != nil {
		return err
	}
	metrics := flags["metrics_listen"]
	host, port := splitAddress(metrics)
	switch {
	case port < 0:
		return fmt.Errorf("--metrics_listen is not host:port (%q)", metrics)
	case isLoopback(host):
		return fmt.Errorf("--metrics_listen=%s is loopback: nothing outside the pod can scrape it", metrics)
	case !s.declares(port):
		return fmt.Errorf("--metrics_listen's port %d is not a declared containerPort (%v)", port,
			s.declaredPorts())
	}
	if n, err := s.portNumber(intstr.FromString("metrics")); err != nil {
		return fmt.Errorf("no container port is named \"metrics\" (--metrics_listen's %d)", port)
	} else if n != port {
		return fmt.Errorf("the container port named \"metrics\" is %d, not --metrics_listen's %d", n, port)
	}
	if annotated, ok := s.w.template.Annotations["prometheus.io/port"]; ok && annotated != strconv.Itoa(port) {
		return fmt.Errorf("prometheus.io/port %s differs from --metrics_listen's port %d", annotated, port)
	}
	return nil
}

func (s *sidecar) checkTerminationGrace() error {
	flags, err := s.effectiveFlags()
	if err != nil {
		return err
	}
	graceMs, err := strconv.Atoi(flags["shutdown_grace_ms"])
	if err != nil {
		return fmt.Errorf("--shutdown_grace_ms=%q is not a number", flags["shutdown_grace_ms"])
	}
	period := int64(defaultTerminationGraceS)
	if p := s.spec().TerminationGracePeriodSeconds; p != nil {
		period = *p
	}
	if need := float64(graceMs)/1000 + graceMarginS; float64(period) < need {
		return fmt.Errorf("terminationGracePeriodSeconds %d is below --shutdown_grace_ms=%d plus %d s (%g)",
			period, graceMs, graceMarginS, need)
	}
	return nil
}

func (s *sidecar) checkResources() error {
	r := s.c.Resources
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, what := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := part.list[what]; !ok {
				return fmt.Errorf("no resources.%s.%s", part.name, what)
			}
		}
	}
	memory := r.Limits[corev1.ResourceMemory]
	switch {
	case memory.Cmp(r.Requests[corev1.ResourceMemory]) < 0:
		return errors.New("memory limit below the request")
	case memory.Cmp(minMemoryLimit) < 0:
		return fmt.Errorf("memory limit %s leaves no headroom over the measured 60-90 MiB (want >= %s)",
			memory.String(), minMemoryLimit.String())
	case r.Limits.Cpu().Cmp(*r.Requests.Cpu()) < 0:
		return errors.New("cpu limit below the request")
	}
	return nil
}

func (s *sidecar) checkSecurityContext() error {
	pod := s.spec().SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	ctx := s.c.SecurityContext
	if ctx == nil {
		return errors.New("no securityContext on the container")
	}
	nonRoot, user := pod.RunAsNonRoot, pod.RunAsUser // the container's own settings win
	if ctx.RunAsNonRoot != nil {
		nonRoot = ctx.RunAsNonRoot
	}
	if ctx.RunAsUser != nil {
		user = ctx.RunAsUser
	}
	caps := ctx.Capabilities
	if caps == nil {
		caps = &corev1.Capabilities{}
	}
	switch {
	case nonRoot == nil || !*nonRoot:
		return errors.New("runAsNonRoot is not true")
	case user == nil:
		return fmt.Errorf("no runAsUser: want %d (the image's USER)", runAsUser)
	case *user != runAsUser:
		return fmt.Errorf("runAsUser is %d, want %d (the image's USER)", *user, runAsUser)
	case ctx.ReadOnlyRootFilesystem == nil || !*ctx.ReadOnlyRootFilesystem:
		return errors.New("readOnlyRootFilesystem is not true")
	case ctx.AllowPrivilegeEscalation == nil || *ctx.AllowPrivilegeEscalation:
		return errors.New("allowPrivilegeEscalation is not false")
	case !slices.Contains(caps.Drop, "ALL"):
		return errors.New("capabilities.drop does not include ALL")
	case len(caps.Add) > 0:
		return fmt.Errorf("capabilities are added: %v", caps.Add)
	case ctx.Privileged != nil && *ctx.Privileged:
		return errors.New("privileged")
	}
	return nil
}

func (s *sidecar) checkRestartPolicy() error {
	policy := s.c.RestartPolicy
	switch {
	case s.isInit && policy == nil:
		return errors.New("an init container without restartPolicy: Always (a native sidecar) " +
			"would block the app forever; it has none")
	case s.isInit && *policy != corev1.ContainerRestartPolicyAlways:
		return fmt.Errorf("an init container without restartPolicy: Always (a native sidecar) "+
			"would block the app forever; it has %q", *policy)
	case !s.isInit && policy != nil:
		return fmt.Errorf("restartPolicy %q on a regular container", *policy)
	}
	return nil
}

// A $(VAR) reference in args that Kubernetes expands, or the escape $$ (so $$(VAR) is none).
var envReference = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func (s *sidecar) checkEnvDefined() error {
	env := map[string]corev1.EnvVar{}
	for _, e := range s.c.Env {
		env[e.Name] = e
	}
	for _, arg := range s.args() {
		for _, m := range envReference.FindAllStringSubmatch(arg, -1) {
			if _, ok := env[m[1]]; m[1] != "" && !ok {
				return fmt.Errorf("$(%s) is used in args but not defined in env", m[1])
			}
		}
	}
	if e, ok := env["POD_NAME"]; ok &&
		(e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name") {
		return errors.New("POD_NAME does not come from the downward API's metadata.name")
	}
	return nil
}

// checkKafkaConfigFilesMounted: each --kafka_config=@file, also in a commented-out line, is a
// file a volume provides (a Secret's, when a whole volume is mounted).
func (s *sidecar) checkKafkaConfigFilesMounted() error {
	flags, err := s.effectiveFlags()
	if err != nil {
		return err
	}
	values := []string{flags["kafka_config"]}
	for _, line := range s.commentedFlagLines() {
		if f, ok := parseFlagArg(line); ok && f.name == "kafka_config" {
			values = append(values, f.value)
		}
	}
	for _, value := range values {
		for _, item := range strings.Split(value, ",") {
			path, ok := strings.CutPrefix(strings.TrimSpace(item), "@")
			if ok {
				if err := s.checkFileMounted(path); err != nil {
					return fmt.Errorf("--kafka_config=@%s: %w", path, err)
				}
			}
		}
	}
	return nil
}

func (s *sidecar) checkFileMounted(path string) error {
	mount, _ := s.mountOf(path)
	if mount == nil {
		return errors.New("no volumeMount provides that file")
	}
	if mount.SubPath != "" {
		return nil // the file itself, from whatever volume
	}
	if v := s.volume(mount.Name); v == nil || (v.Secret == nil && v.Projected == nil && v.ConfigMap == nil) {
		return fmt.Errorf("the file is on volume %q, not a Secret (nor a ConfigMap or projected volume)",
			mount.Name)
	}
	return nil
}

// checkNoNestedReadOnlyMounts: a mount inside a ConfigMap, Secret, projected or downward API
// mount fails at start, as those are read-only.
func (s *sidecar) checkNoNestedReadOnlyMounts() error {
	for _, outer := range s.c.VolumeMounts {
		v := s.volume(outer.Name)
		if outer.SubPath != "" || v == nil ||
			(v.ConfigMap == nil && v.Secret == nil && v.Projected == nil && v.DownwardAPI == nil) {
			continue
		}
		base := strings.TrimRight(outer.MountPath, "/") + "/"
		for _, inner := range s.c.VolumeMounts {
			if strings.HasPrefix(inner.MountPath, base) {
				return fmt.Errorf("%s is mounted inside the read-only %s mount %s", inner.MountPath,
					outer.Name, outer.MountPath)
			}
		}
	}
	return nil
}

// checkFlagFile checks a ConfigMap's *.flags key: a flag file every line of which gflags reads
// as a flag it knows, and no --allow_remote.
func checkFlagFile(text string, flags binaryFlags) error {
	f := parseFlagFile(text)
	switch {
	case len(f.malformed) > 0:
		return fmt.Errorf("lines that are neither --flag=value nor # comment (gflags would read "+
			"them as program names): %q", f.malformed)
	case len(f.active) == 0:
		return errors.New("no flags")
	}
	if bad := flags.unknown(flagNames(append(f.active, f.commented...))); len(bad) > 0 {
		return fmt.Errorf("flags the binary does not accept: %s", strings.Join(bad, ", "))
	}
	if slices.Contains(flagNames(f.active), "allow_remote") {
		return errors.New("--allow_remote: the API must stay on loopback")
	}
	return nil
}

// checkInjected: every rendered Deployment has the sidecar as a native sidecar (an init
// container with restartPolicy: Always) beside its own containers, and the flags came along.
func checkInjected(b *bundle) error {
	deployments := 0
	for _, w := range b.workloads {
		if w.kind != "Deployment" {
			continue
		}
		deployments++
		spec := &w.template.Spec
		i := slices.IndexFunc(spec.InitContainers, func(c corev1.Container) bool { return c.Name == sidecarName })
		if i < 0 {
			return fmt.Errorf("%s has no %s init container", w.label, sidecarName)
		}
		if p := spec.InitContainers[i].RestartPolicy; p == nil || *p != corev1.ContainerRestartPolicyAlways {
			return fmt.Errorf("%s: the injected sidecar has no restartPolicy: Always", w.label)
		}
		names := []string{}
		for _, c := range spec.Containers {
			names = append(names, c.Name)
		}
		if slices.Contains(names, sidecarName) {
			return fmt.Errorf("%s also has a regular %s container", w.label, sidecarName)
		}
		if !slices.ContainsFunc(names, func(n string) bool { return n != sidecarName }) {
			return fmt.Errorf("%s lost its app container", w.label)
		}
	}
	switch {
	case deployments == 0:
		return errors.New("no Deployment rendered")
	case len(b.configMaps) == 0:
		return errors.New("no ConfigMap rendered")
	}
	return nil
}

// checkScaleTarget: the ScaledObject scales a Deployment that the example renders, with the
// sidecar in it.
func checkScaleTarget(so *scaledObject, example *bundle) error {
	target := so.Spec.ScaleTargetRef
	if target.Kind != "" && target.Kind != "Deployment" {
		return fmt.Errorf("scaleTargetRef.kind %q: the example has Deployments", target.Kind)
	}
	for _, s := range example.sidecars(nil) {
		if s.w.kind == "Deployment" && s.w.name == target.Name {
			return nil
		}
	}
	return fmt.Errorf("scaleTargetRef %q is no Deployment of %s with a kafka-sidecar (whose "+
		"metrics the lag is)", target.Name, example.label)
}
