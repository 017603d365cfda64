# fleet — make build | test | demo | lab | fuzz | bench
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: build test deps demo lab fuzz bench vet

build:
	$(GO) build -o $(BIN)/fleet ./cmd/fleet
	@if [ -d cmd/fleet-lab ]; then $(GO) build -o $(BIN)/fleet-lab ./cmd/fleet-lab; fi

# deps installs what the end-to-end tests and the demo need (root, Debian).
deps:
	@./scripts/deps.sh

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# test runs every test, including the end-to-end tests on a lab of real
# sshd + Nix hosts (they need root; CI runs as root and must not skip).
test: deps vet
	FLEET_REQUIRE_LAB=$${FLEET_REQUIRE_LAB-$$( [ "$$(id -u)" = 0 ] && echo 1 || echo 0 )} \
		$(GO) test -race -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=5s

FUZZTIME ?= 60s

demo: deps build
	./scripts/demo.sh

lab: deps build
	$(BIN)/fleet-lab --hosts envy,lenovo,rpi4-a

# fuzz runs the fuzz targets: briefly in make test, for a minute each here.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzJoin$$' -fuzztime $(FUZZTIME) ./internal/shell/
	$(GO) test -run '^$$' -fuzz '^FuzzString$$' -fuzztime $(FUZZTIME) ./internal/nixenc/
	$(GO) test -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZTIME) ./internal/nixenc/
	$(GO) test -run '^$$' -fuzz '^FuzzSelector$$' -fuzztime $(FUZZTIME) ./runtime/

bench: build
	$(GO) run ./bench
