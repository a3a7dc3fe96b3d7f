package main

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// A bundle is what goes to a cluster together: the files of one folder, or one kustomization's
// rendered output.
type bundle struct {
	label      string
	configMaps []*corev1.ConfigMap
	workloads  []workload
	sources    map[any]string // object -> where it came from, for messages
}

// A workload is an object with a pod template (or a Pod).
type workload struct {
	label    string // source:Kind/name
	kind     string
	name     string
	template *corev1.PodTemplateSpec
}

func newBundle(label string) *bundle { return &bundle{label: label, sources: map[any]string{}} }

// add files a decoded object under the bundle; kinds without pods or flags are left out.
func (b *bundle) add(source string, obj any) {
	var w workload
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		b.configMaps = append(b.configMaps, o)
		b.sources[o] = source
		return
	case *appsv1.Deployment:
		w = workload{kind: "Deployment", name: o.Name, template: &o.Spec.Template}
	case *appsv1.StatefulSet:
		w = workload{kind: "StatefulSet", name: o.Name, template: &o.Spec.Template}
	case *appsv1.DaemonSet:
		w = workload{kind: "DaemonSet", name: o.Name, template: &o.Spec.Template}
	case *batchv1.Job:
		w = workload{kind: "Job", name: o.Name, template: &o.Spec.Template}
	case *corev1.Pod:
		w = workload{kind: "Pod", name: o.Name,
			template: &corev1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}}
	default:
		return
	}
	w.label = fmt.Sprintf("%s:%s/%s", source, w.kind, w.name)
	b.workloads = append(b.workloads, w)
}

func (b *bundle) configMap(name string) *corev1.ConfigMap {
	for _, cm := range b.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

func (b *bundle) configMapLabel(cm *corev1.ConfigMap) string {
	return fmt.Sprintf("%s:ConfigMap/%s", b.sources[cm], cm.Name)
}

// A sidecar is one kafka-sidecar container of one workload: named kafka-sidecar, or whose
// image or command says so.
type sidecar struct {
	bundle *bundle
	w      workload
	c      *corev1.Container
	isInit bool
	flags  binaryFlags
}

func isSidecar(c *corev1.Container) bool {
	return c.Name == sidecarName || strings.Contains(c.Image, sidecarName) ||
		(len(c.Command) > 0 && strings.Contains(c.Command[0], "kafka_sidecar"))
}

func (b *bundle) sidecars(flags binaryFlags) []*sidecar {
	var out []*sidecar
	for _, w := range b.workloads {
		spec := &w.template.Spec
		for i := range spec.InitContainers {
			if isSidecar(&spec.InitContainers[i]) {
				out = append(out, &sidecar{b, w, &spec.InitContainers[i], true, flags})
			}
		}
		for i := range spec.Containers {
			if isSidecar(&spec.Containers[i]) {
				out = append(out, &sidecar{b, w, &spec.Containers[i], false, flags})
			}
		}
	}
	return out
}

func (s *sidecar) label() string         { return s.w.label + "/" + s.c.Name }
func (s *sidecar) spec() *corev1.PodSpec { return &s.w.template.Spec }

// args are the container's command after the program, then its args.
func (s *sidecar) args() []string {
	var args []string
	if len(s.c.Command) > 1 {
		args = append(args, s.c.Command[1:]...)
	}
	return append(args, s.c.Args...)
}

func (s *sidecar) volume(name string) *corev1.Volume {
	for i := range s.spec().Volumes {
		if s.spec().Volumes[i].Name == name {
			return &s.spec().Volumes[i]
		}
	}
	return nil
}

// mountOf returns the mount through which the container sees path: one of that very file
// (subPath), else the deepest whose folder holds it; nil when none does.
func (s *sidecar) mountOf(path string) (mount *corev1.VolumeMount, rel string) {
	depth := -1
	for i, m := range s.c.VolumeMounts {
		mountPath := strings.TrimRight(m.MountPath, "/")
		switch {
		case m.SubPath != "" && path == mountPath:
			return &s.c.VolumeMounts[i], m.SubPath
		case m.SubPath == "" && strings.HasPrefix(path, mountPath+"/") && len(mountPath) > depth:
			mount, rel, depth = &s.c.VolumeMounts[i], path[len(mountPath)+1:], len(mountPath)
		}
	}
	return mount, rel
}

// resolveFile returns the text of a file the container sees at path, from a ConfigMap mount,
// and where it came from.
func (s *sidecar) resolveFile(path string) (text, where string, err error) {
	mount, rel := s.mountOf(path)
	if mount == nil {
		return "", "", fmt.Errorf("no volumeMount of container %q provides %s", s.c.Name, path)
	}
	volume := s.volume(mount.Name)
	switch {
	case volume == nil:
		return "", "", fmt.Errorf("volumeMount %q names no volume", mount.Name)
	case volume.ConfigMap == nil:
		return "", "", fmt.Errorf("%s is mounted from volume %q, not a ConfigMap", path, volume.Name)
	}
	source := volume.ConfigMap
	key := rel
	if len(source.Items) > 0 {
		i := slices.IndexFunc(source.Items, func(k corev1.KeyToPath) bool { return k.Path == rel })
		if i < 0 {
			return "", "", fmt.Errorf("volume %q's items do not include %s", volume.Name, rel)
		}
		key = source.Items[i].Key
	}
	cm := s.bundle.configMap(source.Name)
	if cm == nil {
		return "", "", fmt.Errorf("ConfigMap %q (mounted for %s) is not in %s", source.Name, path,
			s.bundle.label)
	}
	data, ok := cm.Data[key]
	if !ok {
		return "", "", fmt.Errorf("ConfigMap %q has no key %q (for %s)", source.Name, key, path)
	}
	return data, s.bundle.configMapLabel(cm) + " key " + key, nil
}

func (s *sidecar) flagfiles() []string {
	var paths []string
	for _, f := range s.flags.settings(s.args()) {
		if f.name == "flagfile" {
			paths = append(paths, f.value)
		}
	}
	return paths
}

// gflags reads a flag file's --flagfile too; a chain this deep is a loop.
const maxFlagfileDepth = 10

// effectiveFlags are the binary's defaults, then the args in order, each --flagfile expanded
// where it stands from the ConfigMap mounted at its path: what the sidecar would run with.
func (s *sidecar) effectiveFlags() (map[string]string, error) {
	flags := map[string]string{}
	for name, info := range s.flags {
		flags[name] = info.def
	}
	var apply func(args []string, depth int) error
	apply = func(args []string, depth int) error {
		for _, f := range s.flags.settings(args) {
			if f.name != "flagfile" {
				flags[f.name] = f.value
				continue
			}
			if depth == maxFlagfileDepth {
				return fmt.Errorf("--flagfile=%s: flag files nested %d deep (a loop?)", f.value, depth)
			}
			text, _, err := s.resolveFile(f.value)
			if err != nil {
				return err
			}
			if err := apply(parseFlagFile(text).active, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return flags, apply(s.args(), 0)
}

// commentedFlagLines are the `# --flag=...` lines of the container's flag files.
func (s *sidecar) commentedFlagLines() []string {
	var lines []string
	for _, path := range s.flagfiles() {
		if text, _, err := s.resolveFile(path); err == nil {
			lines = append(lines, parseFlagFile(text).commented...)
		}
	}
	return lines
}
