# Talim Realtime — the two commands a newcomer needs are `make run` and `make test`.
# Everything else these targets need (build tools, Chromium, npm packages) is
# installed by the targets themselves.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT    := $(CURDIR)
BIN     := $(ROOT)/bin
export PATH := $(BIN):$(PATH)
export GOFLAGS ?= -buildvcs=false
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/talim/realtime/pkg/service.Version=$(VERSION)

# Every module of the workspace (go.work), e.g. ./pkg ./services/edge ...
MODULES  = $(shell go list -m -f '{{.Dir}}' | sed 's|^$(ROOT)|.|')
SERVICES := edge chat notification presence
TOOLS    := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/golangci-lint
FUZZTIME ?= 10s

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(TOOLS) &: scripts/tools/go.mod scripts/tools/go.sum
	GOWORK=off GOBIN=$(BIN) go -C scripts/tools install tool
	@touch $(TOOLS)

.PHONY: tools
tools: $(TOOLS) ## install the pinned build tools into ./bin

.PHONY: build
build: ## build the developer binary and every service binary into ./bin
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/talim ./services/talim/cmd/talim
	@for s in $(SERVICES); do go build -ldflags "$(LDFLAGS)" -o $(BIN)/$$s ./services/$$s/cmd/$$s; done

.PHONY: run
run: pg-deps ## start the whole system: embedded NATS, FerretDB over a private PostgreSQL (data in ./data)
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/talim ./services/talim/cmd/talim
	exec $(BIN)/talim dev

.PHONY: run-pg
run-pg: run ## the same as run (PostgreSQL is the default store)

.PHONY: run-sqlite
run-sqlite: ## like run, with FerretDB over SQLite: no PostgreSQL needed, but history scans whole rooms (trying things out only)
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/talim ./services/talim/cmd/talim
	TALIM_DEV_STORE=sqlite exec $(BIN)/talim dev

.PHONY: proto
proto: $(TOOLS) ## regenerate the protobuf Go code
	cd proto && buf generate && buf lint

.PHONY: proto-check
proto-check: $(TOOLS) ## fail when generated code is stale, buf lint complains or a change breaks the committed API
	cd proto && buf lint
	cd proto && buf breaking --against '../.git#subdir=proto,ref=HEAD'
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  cp -r proto $$tmp/ && mkdir -p $$tmp/bin && cp $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $$tmp/bin/ && \
	  (cd $$tmp/proto && $(BIN)/buf generate) && \
	  diff -r -x '*.proto' -x 'buf.*' -x 'go.*' proto $$tmp/proto >/dev/null || \
	  { echo "proto: generated code is stale: run 'make proto' and commit"; exit 1; }

.PHONY: vet
vet: ## go vet every module
	@for m in $(MODULES); do echo "vet $$m"; (cd $$m && go vet ./...); done

.PHONY: lint
lint: $(TOOLS) ## golangci-lint every module (config: .golangci.yml)
	@for m in $(MODULES); do echo "lint $$m"; (cd $$m && golangci-lint run --config $(ROOT)/.golangci.yml ./...); done

.PHONY: build-check
build-check: ## every module builds, alone too (GOWORK=off, as container builds do)
	@for m in $(MODULES); do (cd $$m && go build ./...); done
	@for s in $(SERVICES); do (cd services/$$s && GOWORK=off go build ./...); done
	@scripts/check-lean.sh
	@scripts/check-container-context.sh

.PHONY: gotest
gotest: ## go test -race every module
	@for m in $(MODULES); do echo "test $$m"; (cd $$m && go test -race -count=1 -timeout 15m ./...); done

.PHONY: fuzz
fuzz: ## short fuzz runs of every parser of untrusted bytes (FUZZTIME=10s)
	scripts/fuzz.sh $(FUZZTIME)

.PHONY: jstest
jstest: pg-deps ## JavaScript client tests (node --test), unit and against a real talim dev stack
	scripts/jstest.sh

.PHONY: kit-check
kit-check: ## @talim/realtime: committed build up to date (like proto-check), strict type-check, unit tests, npm pack into a scratch Vite app
	scripts/kit-check.sh

.PHONY: siotest
siotest: pg-deps ## socket.io-client v4 compatibility tests against a real talim dev stack
	scripts/siotest.sh

.PHONY: test
test: tools browser-deps pg-deps proto-check build-check vet lint gotest fuzz jstest kit-check siotest ## everything CI runs
	@echo "make test: all checks passed"

.PHONY: pg-deps
pg-deps: ## install PostgreSQL (Debian package): the default store of make run, the JS tests and the bench
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

.PHONY: browser-deps
browser-deps: ## install Debian's Chromium for the real-browser tests
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

.PHONY: bench
bench: pg-deps ## load scenarios at moderate sizes (< 10 min): docs/perf/*.json and charts
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/talim ./services/talim/cmd/talim
	TALIM=$(BIN)/talim scripts/bench.sh

IMAGE_PREFIX ?= talim
.PHONY: images
images: ## build one container image per service (needs a container engine: docker or podman)
	@engine=$$(command -v docker || command -v podman) || { echo "images: no container engine (docker or podman) on this machine"; exit 1; }; \
	  $$engine info >/dev/null 2>&1 || { echo "images: $$engine is installed but no engine is running"; exit 1; }; \
	  for s in $(SERVICES); do \
	    echo "image $(IMAGE_PREFIX)/$$s:$(VERSION)"; \
	    $$engine build -f deploy/Dockerfile --build-arg SERVICE=$$s --build-arg VERSION=$(VERSION) -t $(IMAGE_PREFIX)/$$s:$(VERSION) . ; \
	  done

.PHONY: soak
soak: pg-deps ## 10-minute soak (not part of make test): docs/soak-report.{json,md}
	scripts/soak.sh

.PHONY: clean
clean: ## remove ./bin (keeps ./data)
	rm -rf $(BIN)
