// Command kubecheck checks the Kubernetes manifests under k8s/ with Kubernetes' own libraries:
// it renders every kustomization with kustomize's API (sigs.k8s.io/kustomize/api, as
// `kubectl kustomize` does), and decodes every rendered object, and every manifest file, strictly
// into the k8s.io/api types of its kind: an unknown or misspelled field, a duplicate key or a
// value of the wrong type fails. kustomization.yaml files are decoded strictly into kustomize's
// own Kustomization type. What only this project knows (the sidecar's flags, ports, probes)
// is checked by check_manifests.py on what this command renders (--render_to).
//
//	kubecheck --root=. [--render_to=DIR]
//
// Each check is one test case of a JUnit XML report in gtest's shape, written to
// $XML_OUTPUT_FILE when set (Bazel sets it). The exit code is 1 when a check failed.
package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kustomizations to render (directories under --root); components are rendered through
// the kustomizations that use them.
var kustomizations = []string{"k8s/example", "k8s/example-injected", "k8s/autoscaling"}

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) this project uses: its
// fields as KEDA's CRD names them, so that a misspelled one fails as for a built-in kind.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// newObject returns an empty object of the Go type for apiVersion/kind, or nil when the checker
// knows no schema for it.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Pod":
		return &corev1.Pod{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "kustomize.config.k8s.io/v1beta1/Kustomization",
		"kustomize.config.k8s.io/v1alpha1/Component":
		return &types.Kustomization{}
	case "keda.sh/v1alpha1/ScaledObject":
		return &scaledObject{}
	}
	return nil
}

// decodeStrict decodes one YAML document into the type of its kind, failing on what the type
// does not have.
func decodeStrict(doc []byte) error {
	var head metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	if head.APIVersion == "" || head.Kind == "" {
		return errors.New("no apiVersion or kind")
	}
	obj := newObject(head.APIVersion, head.Kind)
	if obj == nil {
		return fmt.Errorf("%s %s: no schema known to the checker (add its type to newObject)",
			head.APIVersion, head.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s %s: %w", head.APIVersion, head.Kind, err)
	}
	return nil
}

// documents splits a YAML stream into its non-empty documents.
func documents(data []byte) [][]byte {
	var docs [][]byte
	for _, doc := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		var probe any
		if yaml.Unmarshal(doc, &probe) == nil && probe != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// A JUnit test case, in gtest's shape (tools/test.sh counts them).
type testCase struct {
	Name      string `xml:"name,attr"`
	Status    string `xml:"status,attr"`
	Result    string `xml:"result,attr"`
	ClassName string `xml:"classname,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
	} `xml:"failure,omitempty"`
}

type report struct{ cases []testCase }

func (r *report) check(suite, name string, err error) {
	c := testCase{Name: name, Status: "run", Result: "completed", ClassName: suite}
	if err != nil {
		c.Failure = &struct {
			Message string `xml:"message,attr"`
		}{err.Error()}
		fmt.Printf("FAIL %s/%s: %v\n", suite, name, err)
	} else {
		fmt.Printf("ok   %s/%s\n", suite, name)
	}
	r.cases = append(r.cases, c)
}

func (r *report) failures() int {
	n := 0
	for _, c := range r.cases {
		if c.Failure != nil {
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
	}{Tests: len(r.cases), Failures: r.failures(), Name: "AllTests"}
	out.Suites = []suite{{Name: "Kubernetes", Tests: len(r.cases), Failures: r.failures(), Cases: r.cases}}
	data, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), data...), 0o644)
}

// render runs kustomize on dir and returns the rendered YAML stream.
func render(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	return resources.AsYaml()
}

func run(root, renderTo string) (*report, error) {
	r := &report{}
	// Every manifest file as written (resources, patches, kustomization files).
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "k8s"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		data, err := os.ReadFile(path)
		if err != nil {
			r.check("Files", rel, err)
			continue
		}
		docs := documents(data)
		if len(docs) == 0 {
			r.check("Files", rel, errors.New("no YAML document"))
		}
		for i, doc := range docs {
			r.check("Files", fmt.Sprintf("%s#%d", rel, i), decodeStrict(doc))
		}
	}

	for _, dir := range kustomizations {
		rendered, err := render(filepath.Join(root, dir))
		r.check("Renders", dir, err)
		if err != nil {
			continue
		}
		for _, doc := range documents(rendered) {
			var head metav1.PartialObjectMetadata
			_ = yaml.Unmarshal(doc, &head)
			name := fmt.Sprintf("%s:%s/%s", dir, head.Kind, head.Name)
			r.check("Rendered", name, decodeStrict(doc))
		}
		if renderTo != "" {
			out := filepath.Join(renderTo, strings.ReplaceAll(dir, "/", "_")+".yaml")
			if err := os.WriteFile(out, rendered, 0o644); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

func main() {
	root := flag.String("root", ".", "the repository root")
	renderTo := flag.String("render_to", "", "a folder to write each kustomization's rendered YAML to (<dir with _ for />.yaml)")
	flag.Parse()
	r, err := run(*root, *renderTo)
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
	fmt.Printf("%d checks, %d failed\n", len(r.cases), r.failures())
	if r.failures() > 0 {
		os.Exit(1)
	}
}
