// Command kubecheck checks the Kubernetes manifests under k8s/ and the Dockerfile, with
// Kubernetes' own libraries, against the sidecar binary:
//
//   - every kustomization renders with kustomize's API (sigs.k8s.io/kustomize/api, as
//     `kubectl kustomize` does), and every manifest file and rendered object decodes strictly into
//     the k8s.io/api type of its kind (kustomization files into kustomize's own type): an unknown
//     or misspelled field, a duplicate key or a value of the wrong type fails;
//
//   - then what only this project knows, on the typed objects of each folder and of each
//     rendered kustomization: the flags in args and in flag files are flags the binary accepts
//     (its --helpfull); for each kafka-sidecar container, with the flags it would run with (the
//     binary's defaults, then its args, a --flagfile expanded from the ConfigMap mounted there):
//     the app API on loopback, gRPC liveness and readiness probes on --health_listen's port,
//     --metrics_listen's port declared and annotated, a termination grace above
//     --shutdown_grace_ms, resources, security settings, a native sidecar's restartPolicy, $(VAR)s
//     defined, --kafka_config files mounted, no mount inside a read-only one; the component
//     injects the sidecar; the ScaledObject scales a Deployment with the sidecar;
//
//   - the Dockerfile: EXPOSE is the manifests' health and metrics ports, USER their runAsUser,
//     and the runtime stage installs the package of every shared library the binary links.
//
//     kubecheck --root=. --binary=bazel-bin/sidecar/kafka_sidecar [--dockerfile=Dockerfile]
//
// Each check is one test case of a JUnit XML report in gtest's shape, written to
// $XML_OUTPUT_FILE when set (Bazel sets it). The exit code is 1 when a check failed.
package main

import (
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The kustomizations to render (directories under --root); components are rendered through
// the kustomizations that use them.
var kustomizations = []string{"k8s/example", "k8s/example-injected", "k8s/autoscaling"}

const (
	injected     = "k8s/example-injected" // its Deployments must come out with the sidecar
	scaled       = "k8s/autoscaling"      // its ScaledObject scales a Deployment of scaledTarget
	scaledTarget = "k8s/example"
)

// A JUnit test case, in gtest's shape (tools/test.sh counts them; a skipped one says
// result="skipped").
type testCase struct {
	Name      string `xml:"name,attr"`
	Status    string `xml:"status,attr"`
	Result    string `xml:"result,attr"`
	ClassName string `xml:"classname,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
	} `xml:"failure,omitempty"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped,omitempty"`
}

type report struct{ cases []testCase }

// errSkip, wrapped, reports a check as skipped.
var errSkip = errors.New("skipped")

// check records one test case: passed when err is nil, skipped when it wraps errSkip.
func (r *report) check(suite, name string, err error) {
	c := testCase{Name: name, Status: "run", Result: "completed", ClassName: suite}
	switch {
	case err == nil:
		fmt.Printf("ok   %s.%s\n", suite, name)
	case errors.Is(err, errSkip):
		c.Result = "skipped"
		c.Skipped = &struct {
			Message string `xml:"message,attr"`
		}{err.Error()}
		fmt.Printf("skip %s.%s: %v\n", suite, name, err)
	default:
		c.Failure = &struct {
			Message string `xml:"message,attr"`
		}{err.Error()}
		fmt.Printf("FAIL %s.%s: %v\n", suite, name, err)
	}
	r.cases = append(r.cases, c)
}

func (r *report) count(suite string, failed bool) int {
	n := 0
	for _, c := range r.cases {
		if (suite == "" || c.ClassName == suite) && (!failed || c.Failure != nil) {
			n++
		}
	}
	return n
}

func (r *report) write(path string) error {
	type suite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testCase `xml:"testcase"`
	}
	out := struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Errors   int      `xml:"errors,attr"`
		Disabled int      `xml:"disabled,attr"`
		Name     string   `xml:"name,attr"`
		Suites   []suite  `xml:"testsuite"`
	}{Tests: r.count("", false), Failures: r.count("", true), Name: "AllTests"}
	index := map[string]int{} // suite name -> its place in out.Suites
	for _, c := range r.cases {
		i, ok := index[c.ClassName]
		if !ok {
			i, index[c.ClassName] = len(out.Suites), len(out.Suites)
			out.Suites = append(out.Suites, suite{Name: c.ClassName, Tests: r.count(c.ClassName, false),
				Failures: r.count(c.ClassName, true)})
		}
		out.Suites[i].Cases = append(out.Suites[i].Cases, c)
	}
	data, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), data...), 0o644)
}

// A checker holds what the checks share: the binary's flags and the sidecars' ports.
type checker struct {
	r     report
	flags binaryFlags
	ports map[int]bool // the health and metrics ports of the folders' sidecars
}

// checkBundle runs the flag-file checks on a bundle's ConfigMaps and the sidecar checks on its
// sidecar containers; with collectPorts, it notes their health and metrics ports.
func (c *checker) checkBundle(suite string, b *bundle, collectPorts bool) {
	for _, cm := range b.configMaps {
		for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
			if strings.HasSuffix(key, ".flags") {
				c.r.check(suite, "flag_file/"+b.configMapLabel(cm)+"/"+key,
					c.needFlags(func() error { return checkFlagFile(cm.Data[key], c.flags) }))
			}
		}
	}
	for _, s := range b.sidecars(c.flags) {
		for _, check := range sidecarChecks {
			c.r.check(suite, check.name+"/"+s.label(), c.needFlags(func() error { return check.check(s) }))
		}
		if !collectPorts || c.flags == nil {
			continue
		}
		if flags, err := s.effectiveFlags(); err == nil {
			for _, flag := range []string{"health_listen", "metrics_listen"} {
				if _, port := splitAddress(flags[flag]); port >= 0 {
					c.ports[port] = true
				}
			}
		}
	}
}

// needFlags runs a check that needs the binary's flags, or fails it when they are unknown. A
// check that panics (input it did not expect) fails alone.
func (c *checker) needFlags(check func() error) (err error) {
	if c.flags == nil {
		return errors.New("the binary's flags are unknown (see Binary.helpfull_lists_flags)")
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the check panicked: %v", p)
		}
	}()
	return check()
}

// decodeFile decodes each document of a manifest file (one test case each) and files the
// objects of its folder's bundle.
func (c *checker) decodeFile(root, path string, folders map[string]*bundle) {
	rel, _ := filepath.Rel(root, path)
	data, err := os.ReadFile(path)
	if err != nil {
		c.r.check("Files", rel, err)
		return
	}
	docs, err := documents(data)
	if err != nil {
		c.r.check("Files", rel, err)
		return
	}
	if len(docs) == 0 {
		c.r.check("Files", rel, errors.New("no YAML document"))
	}
	dir := filepath.Dir(rel)
	if folders[dir] == nil {
		folders[dir] = newBundle(dir)
	}
	for i, doc := range docs {
		obj, err := decodeStrict(doc)
		c.r.check("Files", rel+"#"+strconv.Itoa(i), err)
		if err == nil {
			folders[dir].add(rel, obj)
		}
	}
}

// renderKustomization renders dir (one test case), decodes each rendered object (one each) and
// returns them as a bundle, with the ScaledObjects apart; nil when it did not render.
func (c *checker) renderKustomization(root, dir string) (*bundle, []*scaledObject) {
	rendered, err := render(filepath.Join(root, dir))
	c.r.check("Renders", dir, err)
	if err != nil {
		return nil, nil
	}
	docs, err := documents(rendered)
	if err != nil {
		c.r.check("Rendered", dir, err)
		return nil, nil
	}
	b := newBundle("rendered:" + dir)
	var scaledObjects []*scaledObject
	for _, doc := range docs {
		var head metav1.PartialObjectMetadata
		_ = yaml.Unmarshal(doc, &head)
		obj, err := decodeStrict(doc)
		c.r.check("Rendered", fmt.Sprintf("%s:%s/%s", dir, head.Kind, head.Name), err)
		if so, ok := obj.(*scaledObject); ok {
			scaledObjects = append(scaledObjects, so)
		}
		b.add(b.label, obj)
	}
	return b, scaledObjects
}

func run(root, binary, dockerfile string) (*report, error) {
	c := &checker{ports: map[int]bool{}}
	flags, err := loadBinaryFlags(binary)
	c.r.check("Binary", "helpfull_lists_flags", err)
	c.flags = flags

	// Every manifest file as written (resources, patches, kustomization files), and the
	// project's checks on each folder's objects.
	var files []string
	err = filepath.WalkDir(filepath.Join(root, "k8s"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	folders := map[string]*bundle{}
	for _, path := range files { // WalkDir walks in lexical order
		c.decodeFile(root, path, folders)
	}
	for _, dir := range slices.Sorted(maps.Keys(folders)) {
		c.checkBundle("Manifests", folders[dir], true)
	}

	// The same on what each kustomization renders.
	rendered := map[string]*bundle{}
	var scaledObjects []*scaledObject
	for _, dir := range kustomizations {
		b, sos := c.renderKustomization(root, dir)
		if b == nil {
			continue
		}
		rendered[dir] = b
		if dir == scaled {
			scaledObjects = sos
		}
		c.checkBundle("Kustomize", b, false)
	}
	if b := rendered[injected]; b != nil {
		c.r.check("Kustomize", "sidecar_injected/"+injected, checkInjected(b))
	}
	if b := rendered[scaledTarget]; b != nil && rendered[scaled] != nil {
		if len(scaledObjects) == 0 {
			c.r.check("Kustomize", "scale_target/"+scaled, errors.New("no ScaledObject rendered"))
		}
		for _, so := range scaledObjects {
			c.r.check("Kustomize", "scale_target/"+scaled+":ScaledObject/"+so.Name, checkScaleTarget(so, b))
		}
	}

	stage, err := readDockerfile(dockerfile)
	for _, check := range []struct {
		name string
		fn   func() error
	}{
		{"expose_matches_manifests", func() error { return checkDockerfileExpose(stage, c.ports) }},
		{"user_and_entrypoint", func() error { return checkDockerfileUser(stage) }},
		{"runtime_packages_cover_ldd", func() error { return checkDockerfilePackages(stage, binary) }},
	} {
		if err != nil {
			c.r.check("Dockerfile", check.name, err)
		} else {
			c.r.check("Dockerfile", check.name, check.fn())
		}
	}
	return &c.r, nil
}

func main() {
	root := flag.String("root", ".", "the repository root, which holds k8s/")
	binary := flag.String("binary", "bazel-bin/sidecar/kafka_sidecar", "the kafka_sidecar binary, "+
		"whose --helpfull lists the flags the manifests may use (relative paths are to the "+
		"working directory)")
	dockerfile := flag.String("dockerfile", "", "the sidecar's Dockerfile (default: <root>/Dockerfile)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "kubecheck: unexpected arguments %q (see --help)\n", flag.Args())
		os.Exit(2)
	}
	if *dockerfile == "" {
		*dockerfile = filepath.Join(*root, "Dockerfile")
	}
	r, err := run(*root, *binary, *dockerfile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubecheck: %v\n", err)
		os.Exit(2)
	}
	if path := os.Getenv("XML_OUTPUT_FILE"); path != "" {
		if err := r.write(path); err != nil {
			fmt.Fprintf(os.Stderr, "kubecheck: %v\n", err)
			os.Exit(2)
		}
	}
	fmt.Printf("%d checks, %d failed\n", r.count("", false), r.count("", true))
	if r.count("", true) > 0 {
		os.Exit(1)
	}
}
