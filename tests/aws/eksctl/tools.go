//go:build tools

// Package tools pins the command that build.sh compiles, so that go.mod and go.sum
// record every module it needs.
package tools

import (
	_ "github.com/weaveworks/eksctl/cmd/eksctl"
)
