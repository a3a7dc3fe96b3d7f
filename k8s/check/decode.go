package main

import (
	"bytes"
	"errors"
	"fmt"

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
// does not have. It returns the typed object.
func decodeStrict(doc []byte) (any, error) {
	var head metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, err
	}
	if head.APIVersion == "" || head.Kind == "" {
		return nil, errors.New("no apiVersion or kind")
	}
	obj := newObject(head.APIVersion, head.Kind)
	if obj == nil {
		return nil, fmt.Errorf("%s %s: no schema known to the checker (add its type to newObject)",
			head.APIVersion, head.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", head.APIVersion, head.Kind, err)
	}
	return obj, nil
}

// documents splits a YAML stream into its non-empty documents; one that is not YAML is an error.
func documents(data []byte) ([][]byte, error) {
	var docs [][]byte
	for i, doc := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		var probe any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if probe != nil {
			docs = append(docs, doc)
		}
	}
	return docs, nil
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
