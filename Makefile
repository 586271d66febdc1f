# memval: the front door. `make demo` runs the main job on the simulated
# device; `make test` is what CI runs (.ci/run).
GO      ?= go
BIN     ?= bin/memval
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The Python interpreter with torch for the scenario script's tests. Debian's
# python3-torch installs for /usr/bin/python3; on GPU hosts plain python3 has
# torch 2.x.
MEMVAL_PYTHON ?= python3
export MEMVAL_PYTHON

.PHONY: build test bench lint demo fuzz clean

build:
	CGO_ENABLED=1 $(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/memval

# Tests that need PyTorch skip without it (and say so at the end), except
# under CI=true, where they fail. The second pass builds and tests without
# cgo: only the nvml device needs it.
test:
	$(GO) vet ./...
	@skips=$$(mktemp); \
	MEMVAL_SKIPLOG=$$skips $(GO) test -count=1 ./...; rc=$$?; \
	n=$$(wc -l < $$skips | tr -d ' '); rm -f $$skips; \
	if [ "$$n" != 0 ]; then \
	  echo "make test: $$n tests skipped: PyTorch is not importable with MEMVAL_PYTHON=$(MEMVAL_PYTHON)."; \
	  echo "  To run them: apt-get install python3-torch, then make test MEMVAL_PYTHON=/usr/bin/python3"; \
	  echo "  (or point MEMVAL_PYTHON at any interpreter that has torch)."; \
	fi; \
	exit $$rc
	CGO_ENABLED=0 $(GO) vet ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./profiler/... ./cmd/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Short fuzzing of every parser (each target 10s).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
	  done; \
	done

# The whole product on the simulated H100, in well under a minute: an
# estimate, one validated scenario, two sweeps (GPT-2 small over precision,
# attention and checkpointing; the starter set, 124M to 1.5B parameters),
# and the fit of every formula to them.
DEMO ?= demo-out
demo: build
	$(BIN) estimate --model gpt2 --batch 8 --seq 1024 --precision bf16 --gpu h100-80gb --formula all
	$(BIN) validate scenarios/gpt2-b8-s1024-bf16.yaml --device sim --out $(DEMO)/validate
	$(BIN) sweep scenarios/grids/gpt2-matrix.yaml --device sim --out $(DEMO)/sweep/gpt2-matrix
	$(BIN) sweep scenarios/grids/starter.yaml --device sim --out $(DEMO)/sweep/starter
	$(BIN) fit $(DEMO)/sweep --out $(DEMO)/fit
	@echo "demo: report in $(DEMO)/fit/report.md (charts beside it)"

clean:
	rm -rf bin
