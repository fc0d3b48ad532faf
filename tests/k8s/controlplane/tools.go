//go:build tools

// Package tools pins the commands that build.sh compiles, so that go.mod and go.sum
// record every module they need.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
	_ "k8s.io/kube-state-metrics/v2"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
