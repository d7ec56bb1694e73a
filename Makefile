# edgehost — the two commands a newcomer needs are `make run` and `make test`.
# Everything built goes under build/ (ignored); `make run` keeps its data in .run/.

GO        ?= go
BUILD     := build
BIN       := $(BUILD)/bin/edgehost
PLUGINDIR := $(BUILD)/plugins
RUNDIR    := .run
# First-party plugins (embedded in the binary) and examples (loaded by
# make run from the plugin dir).
FIRSTPARTY := $(patsubst %/,%,$(dir $(wildcard plugins/*/main.go)))
EXAMPLES   := $(patsubst %/,%,$(dir $(wildcard examples/*/main.go)))
# The examples written against the C, Rust and AssemblyScript SDKs
# (examples/<lang>/<name>/), built by scripts/build-plugin.sh.
SDK_EXAMPLES := $(patsubst %/,%,$(wildcard examples/c/*/ examples/rust/*/ examples/assemblyscript/*/))
# Where the binary's go:embed finds the first-party plugins (host/builtin).
BUILTINDIR := host/builtin/wasm

# The build's identity, stamped into the binary (edgehost version). A tag
# vX.Y.Z gives X.Y.Z; otherwise 0.0.0~git<commit date>.<commit>, which
# Debian's version order sorts by date.
COMMIT     ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
VERSION    ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//'); \
	[ -n "$$v" ] && echo "$$v" || echo "0.0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null).$(COMMIT)")
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)

# wasm-plugin DIR OUT builds the Go plugin in DIR to OUT.
wasm-plugin = GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build -buildmode=c-shared -trimpath -o $(2) ./$(1)

.PHONY: all build builtin plugins run test bench fuzz vet fmt clean deps proto install deb

all: build plugins

# The daemon, with the first-party plugins embedded.
build: builtin
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgehost

# make install [DESTDIR=root] [PREFIX=/usr/local]: the binary, the systemd
# unit (its ExecStart pointed at PREFIX), the default config at
# /etc/edgehost/edgehost.yaml (an existing one is kept) and the data dir
# /var/lib/edgehost (docs/systemd.md). INSTALL_BIN installs a binary built
# elsewhere instead of running make build.
PREFIX      ?= /usr/local
DESTDIR     ?=
UNITDIR     ?= $(PREFIX)/lib/systemd/system
INSTALL_BIN ?=
install: $(if $(INSTALL_BIN),,build)
	install -D -m 0755 $(or $(INSTALL_BIN),$(BIN)) $(DESTDIR)$(PREFIX)/bin/edgehost
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)/etc/edgehost
	sed 's|/usr/bin/edgehost|$(PREFIX)/bin/edgehost|' packaging/edgehost.service > $(DESTDIR)$(UNITDIR)/edgehost.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/edgehost.service
	@if [ -e $(DESTDIR)/etc/edgehost/edgehost.yaml ]; then \
		echo "keeping $(DESTDIR)/etc/edgehost/edgehost.yaml"; \
	else \
		$(or $(INSTALL_BIN),$(BIN)) config default > $(DESTDIR)/etc/edgehost/edgehost.yaml && \
		chmod 0600 $(DESTDIR)/etc/edgehost/edgehost.yaml; \
	fi
	install -d -m 0700 $(DESTDIR)/var/lib/edgehost

# make deb: build/edgehost_<version>_<arch>.deb, built offline by nfpm's Go
# API (internal/packaging/mkdeb) from what make install installs.
DEB_ARCH ?= $(shell $(GO) env GOARCH)
DEB      := $(BUILD)/edgehost_$(VERSION)_$(DEB_ARCH).deb
deb: $(if $(INSTALL_BIN),,build)
	@mkdir -p $(BUILD)/deb
	$(or $(INSTALL_BIN),$(BIN)) config default > $(BUILD)/deb/edgehost.yaml
	$(GO) run ./internal/packaging/mkdeb -binary $(or $(INSTALL_BIN),$(BIN)) -unit packaging/edgehost.service \
		-config $(BUILD)/deb/edgehost.yaml -version $(VERSION) -arch $(DEB_ARCH) -out $(DEB)

builtin:
	@for p in $(FIRSTPARTY); do \
		echo "built-in plugin $$p"; \
		$(call wasm-plugin,$$p,$(BUILTINDIR)/$$(basename $$p).wasm) || exit 1; \
		if [ -f $$p/manifest.json ]; then cp $$p/manifest.json $(BUILTINDIR)/$$(basename $$p).json; fi; \
	done

# Every plugin, first-party and example, as build/plugins/<dir>.wasm; the
# other SDKs' examples as build/plugins/<lang>/<dir>.wasm (a subdirectory:
# make run and make bench load only the Go ones).
plugins: deps
	@mkdir -p $(PLUGINDIR)
	@for p in $(FIRSTPARTY) $(EXAMPLES); do \
		echo "plugin $$p"; \
		$(call wasm-plugin,$$p,$(PLUGINDIR)/$$(basename $$p).wasm) || exit 1; \
	done
	@for p in $(SDK_EXAMPLES); do \
		lang=$$(basename $$(dirname $$p)); \
		echo "plugin $$p"; \
		scripts/build-plugin.sh $$lang $$p $(PLUGINDIR)/$$lang/$$(basename $$p).wasm || exit 1; \
	done

# Run the daemon on embedded defaults: no cloud, data under .run/, the
# simulated devices of examples/devices served by the built-in virtual mapper. The
# first-party plugins are in the binary; the examples go in the plugin dir.
run: build plugins
	@mkdir -p $(RUNDIR)/plugins
	@for p in $(EXAMPLES); do cp $(PLUGINDIR)/$$(basename $$p).wasm $(RUNDIR)/plugins/; done
	$(BIN) run --config scripts/dev.yaml --data-dir $(RUNDIR) --devices-dir examples/devices

# The whole test suite, as CI runs it (.ci/run). The test plugins are
# compiled once, without -race, into a compilation cache that this run
# alone uses (internal/plugintest), then every package runs under -race.
# wazero names its cache directory after its version, which it reads from
# the binary's build info; test binaries carry none, so both sides are told
# the same name.
WAZERO_CACHE_NAME := -ldflags=-X=github.com/tetratelabs/wazero/internal/version.version=edgehost-test
test: deps vet
	@cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && \
	export EDGEHOST_TEST_WASM_CACHE="$$cache" && \
	$(GO) run $(WAZERO_CACHE_NAME) ./internal/plugintest/precompile && \
	$(GO) test $(WAZERO_CACHE_NAME) -race -timeout 15m ./...

vet:
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./sdk/... ./examples/... ./plugins/...
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)

bench: build plugins
	@scripts/bench.sh

# Installs what the tests and plugins need (mosquitto, clang, rustc, the
# AssemblyScript compiler: scripts/deps.sh); does nothing when present.
deps:
	@scripts/deps.sh

# Short fuzzing of every decoder (the seed corpora run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./abi/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./host/config/
	$(GO) test -run '^$$' -fuzz FuzzParsePackage -fuzztime 30s ./host/plugins/
	$(GO) test -run '^$$' -fuzz FuzzMessageJSON -fuzztime 30s ./host/api/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./plugins/modbus/mbap/
	$(GO) test -run '^$$' -fuzz FuzzReplyJSON -fuzztime 30s ./plugins/modbus/
	$(GO) test -run '^$$' -fuzz FuzzModule -fuzztime 30s ./host/wasm/internal/instrument/
	$(GO) test -run '^$$' -fuzz FuzzSDKEchoDecode -fuzztime 30s ./host/wasm/
	$(GO) test -run '^$$' -fuzz FuzzCodec -fuzztime 30s ./plugins/devicetwin/
	$(GO) test -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 30s ./host/meta/
	$(GO) test -run '^$$' -fuzz FuzzParseResource -fuzztime 30s ./host/meta/
	$(GO) test -run '^$$' -fuzz FuzzDecodeObject -fuzztime 30s ./host/meta/
	$(GO) test -run '^$$' -fuzz FuzzDecodeView -fuzztime 30s ./sdk/
	$(GO) test -run '^$$' -fuzz FuzzDecodeMeta -fuzztime 30s ./host/store/
	$(GO) test -run '^$$' -fuzz FuzzDecodeMarker -fuzztime 30s ./host/store/
	$(GO) test -run '^$$' -fuzz FuzzParseObjects -fuzztime 30s ./host/dmi/
	$(GO) test -run '^$$' -fuzz FuzzReadDevicesFile -fuzztime 30s ./host/twin/
	$(GO) test -run '^$$' -fuzz FuzzEndpoint -fuzztime 30s ./host/iogrant/
	$(GO) test -run '^$$' -fuzz FuzzDecodeMapping -fuzztime 30s ./host/twin/
	$(GO) test -run '^$$' -fuzz FuzzImport -fuzztime 30s ./host/edgecoreimport/

fmt:
	gofmt -w .

# The DMI gRPC code (host/dmi/v1beta1) from its .proto. Installs protoc
# (Debian's protobuf-compiler) and the two Go plugins when missing; the
# generated files are committed, so only a .proto change needs this.
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
GOBIN_DIR          := $(shell $(GO) env GOPATH)/bin
proto:
	@command -v protoc >/dev/null || apt-get install -y protobuf-compiler
	@test -x $(GOBIN_DIR)/protoc-gen-go || $(GO) install $(PROTOC_GEN_GO)
	@test -x $(GOBIN_DIR)/protoc-gen-go-grpc || $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH="$(GOBIN_DIR):$$PATH" protoc -I . --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative host/dmi/v1beta1/api.proto

clean:
	rm -rf $(BUILD) $(BUILTINDIR)/*.wasm
