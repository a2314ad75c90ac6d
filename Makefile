# smartboxd — make help lists the targets.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin
PKGS    := ./...
FUZZTIME ?= 5s
N       ?= 200

.PHONY: help build test lint bench cross release run run-update test-arm crash powercut fuzz fleet deps clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install what the tests need (mosquitto) when missing
	@bash .ci/install-deps.sh

build: ## build smartboxd and the demo cloud into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/smartboxd ./cmd/smartboxd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/democloud ./cmd/democloud

test: deps ## every test: fuzz targets briefly, the unit tests under qemu for arm/arm64, then all tests with -race
	time bash .ci/fuzz.sh $(FUZZTIME)
	time bash .ci/test-arm.sh
	time $(GO) test -race -count=1 -timeout 20m $(PKGS)

lint: ## go vet and staticcheck
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

bench: deps ## measure the hot paths against their bare baselines, then again on one core (GOMAXPROCS=1, taskset)
	$(GO) run ./cmd/smartbench -one-core

# make fleet N=1000: N is the crash rounds' variable too; fleet's own default is 1000.
FLEET_N = $(if $(filter command line environment,$(origin N)),$(N),1000)

fleet: deps ## N boxes (default 1000) through every fleet scenario on mosquitto and a 3-node RabbitMQ cluster
	@mkdir -p $(BIN)
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	$(GO) run ./cmd/fleetsim -n $(FLEET_N) -json $(BIN)/fleet.json

cross: ## stripped static binaries for linux/arm (v6, v7) and linux/arm64
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/smartboxd-linux-armv6 ./cmd/smartboxd
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/smartboxd-linux-armv7 ./cmd/smartboxd
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/smartboxd-linux-arm64 ./cmd/smartboxd
	@ls -l $(BIN)/smartboxd-linux-*

release: ## the arm binaries with their signed manifests (RELEASE_KEY=path, VERSION=MAJOR.MINOR.PATCH)
	@if [ -z "$(RELEASE_KEY)" ]; then \
		echo "make release needs RELEASE_KEY=path to a release signing key. Make one, once, offline:"; \
		echo "  go run ./cmd/smartboxd keygen -release -out release.key"; \
		echo "and list the printed key in every box's trust.release_keys."; exit 2; fi
	@if ! [[ "$(VERSION)" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$$ ]]; then \
		echo "make release needs VERSION=MAJOR.MINOR.PATCH, not $(VERSION)"; exit 2; fi
	$(MAKE) cross VERSION=$(VERSION)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/smartboxd ./cmd/smartboxd
	@for b in $(BIN)/smartboxd-linux-armv6 $(BIN)/smartboxd-linux-armv7 $(BIN)/smartboxd-linux-arm64; do \
		$(BIN)/smartboxd release sign -key "$(RELEASE_KEY)" -version "$(VERSION)" $$b >/dev/null || exit 1; \
		echo "$$b.manifest"; done

test-arm: ## run the unit tests under qemu for arm and arm64
	bash .ci/test-arm.sh

crash: deps ## kill -9 the daemon N times under load and check nothing is lost (N=200)
	SMARTBOX_CRASH_ROUNDS=$(N) $(GO) test -count=1 -run TestCrash -timeout 60m -v ./cmd/smartboxd

powercut: deps ## cut the power under the daemon N times (faultfs, root) and check nothing is lost (N=200)
	SMARTBOX_POWERCUT_ROUNDS=$(N) $(GO) test -count=1 -run 'TestPowerCut$$' -timeout 90m -v ./cmd/smartboxd

fuzz: ## run every fuzz target for FUZZTIME each
	bash .ci/fuzz.sh $(FUZZTIME)

run: build ## the simulated 8-bin box with its demo cloud, console on this terminal
	@mkdir -p .run
	@bin/democloud -listen 127.0.0.1:18830 -box demo-box & echo $$! > .run/democloud.pid; \
	trap 'kill $$(cat .run/democloud.pid) 2>/dev/null; wait 2>/dev/null' EXIT; \
	sleep 0.5; bin/smartboxd -config configs/sim.yaml

run-update: build ## the demo, with the cloud pushing bin/smartboxd-update (built as 99.0.0) to the box
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=99.0.0' -o $(BIN)/smartboxd-update ./cmd/smartboxd
	@mkdir -p .run
	@bin/democloud -listen 127.0.0.1:18830 -box demo-box -update $(BIN)/smartboxd-update -update-version 99.0.0 & echo $$! > .run/democloud.pid; \
	trap 'kill $$(cat .run/democloud.pid) 2>/dev/null; wait 2>/dev/null' EXIT; \
	sleep 0.5; bin/smartboxd -config configs/sim.yaml

clean: ## remove build output and the demo's data
	rm -rf $(BIN) .run
