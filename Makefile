# edgehost — the two commands a newcomer needs are `make run` and `make test`.
# Everything built goes under build/ (ignored); `make run` keeps its data in .run/.

GO        ?= go
BUILD     := build
BIN       := $(BUILD)/bin/edgehost
PLUGINDIR := $(BUILD)/plugins
RUNDIR    := .run
# First-party plugins and examples built into $(PLUGINDIR) as <dir>.wasm.
PLUGINS   := $(patsubst %/,%,$(dir $(wildcard examples/*/main.go plugins/*/main.go)))

.PHONY: all build plugins run test bench fuzz vet fmt clean deps

all: build plugins

build:
	$(GO) build -o $(BIN) ./cmd/edgehost

plugins:
	@mkdir -p $(PLUGINDIR)
	@for p in $(PLUGINS); do \
		echo "plugin $$p"; \
		GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build -buildmode=c-shared -trimpath \
			-o $(PLUGINDIR)/$$(basename $$p).wasm ./$$p || exit 1; \
	done

# Run the daemon on embedded defaults: no cloud, data under .run/.
run: build plugins
	@mkdir -p $(RUNDIR)/plugins
	cp $(PLUGINDIR)/*.wasm $(RUNDIR)/plugins/
	$(BIN) run --config scripts/dev.yaml --data-dir $(RUNDIR)

# The whole test suite, as CI runs it (.ci/run).
test: deps vet
	$(GO) test -race -timeout 15m ./...

vet:
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./sdk/... ./examples/... ./plugins/...
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)

bench: build plugins
	@scripts/bench.sh

# Installs what the tests need (mosquitto); does nothing when present.
deps:
	@scripts/deps.sh

# Short fuzzing of every decoder (the seed corpora run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./abi/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./host/config/
	$(GO) test -run '^$$' -fuzz FuzzParsePackage -fuzztime 30s ./host/plugins/
	$(GO) test -run '^$$' -fuzz FuzzMessageJSON -fuzztime 30s ./host/api/

fmt:
	gofmt -w .

clean:
	rm -rf $(BUILD)
