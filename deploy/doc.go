// Package deploy holds no production code: its tests validate the deployment
// manifests in this directory offline (kustomize rendering, strict decoding into the
// Kubernetes and Prometheus Operator Go types, probe/port/env contracts, the NATS
// permissions in nats/nats.conf against a real in-process server, compose and Helm
// values). Run: cd deploy && GOWORK=off go test -race ./...
package deploy
