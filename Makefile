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

.PHONY: build test bench lint demo fuzz clean truth-env truth-test peers-env peers

# The truth environment (scenarios/requirements-truth.txt: torch 2.x,
# transformers, peft, accelerate, bitsandbytes) in a virtualenv. A venv whose
# stamp matches the requirements file is reused as it is. About 2.6 GB
# downloaded and 5 GB on disk (torch from PyPI is a CUDA build); see README.
TRUTH_VENV   ?= .venv-truth
TRUTH_REQS   := scenarios/requirements-truth.txt
TRUTH_PYTHON ?= python3
truth-env:
	@want=$$(sha256sum $(TRUTH_REQS) | cut -d' ' -f1); \
	if [ -x "$(TRUTH_VENV)/bin/python" ] && [ "$$(cat $(TRUTH_VENV)/.memval-reqs 2>/dev/null)" = "$$want" ]; then \
	  echo "truth-env: $(TRUTH_VENV) is up to date"; exit 0; fi; \
	start=$$(date +%s); rm -rf "$(TRUTH_VENV)"; \
	$(TRUTH_PYTHON) -m venv "$(TRUTH_VENV)" && \
	"$(TRUTH_VENV)/bin/pip" install --quiet -r $(TRUTH_REQS) && \
	"$(TRUTH_VENV)/bin/python" -c 'import torch, transformers, peft, accelerate' && \
	echo "$$want" > "$(TRUTH_VENV)/.memval-reqs" && \
	echo "truth-env: $(TRUTH_VENV) installed in $$(( $$(date +%s) - start )) s, $$(du -sh "$(TRUTH_VENV)" | cut -f1) on disk"

# The tests against the truth environment (what CI runs).
truth-test: truth-env
	$(MAKE) test MEMVAL_PYTHON=$(abspath $(TRUTH_VENV))/bin/python

# The peer estimators (scenarios/requirements-peers.txt: llm-analysis,
# DeepSpeed) added to the truth environment, which has torch, transformers
# and accelerate; its own stamp, so a changed truth venv gets them again.
PEERS_REQS := scenarios/requirements-peers.txt
peers-env: truth-env
	@want=$$(sha256sum $(PEERS_REQS) | cut -d' ' -f1); \
	if [ "$$(cat $(TRUTH_VENV)/.memval-peers 2>/dev/null)" = "$$want" ]; then \
	  echo "peers-env: $(TRUTH_VENV) has the peers"; exit 0; fi; \
	start=$$(date +%s); \
	"$(TRUTH_VENV)/bin/pip" install --quiet --no-deps $$(grep '^wheel==' $(PEERS_REQS)) && \
	DS_BUILD_OPS=0 "$(TRUTH_VENV)/bin/pip" install --quiet --no-deps --no-build-isolation -r $(PEERS_REQS) && \
	DS_ACCELERATOR=cpu "$(TRUTH_VENV)/bin/python" -c 'import llm_analysis.analysis, deepspeed.runtime.zero.stage3, accelerate.commands.estimate' 2>/dev/null && \
	echo "$$want" > "$(TRUTH_VENV)/.memval-peers" && \
	echo "peers-env: installed in $$(( $$(date +%s) - start )) s"

# memval beside its peers on the CPU truth and the published corpus
# (cmd/memval-peers, package peers): the table in $(PEERS_OUT)/report.md.
PEERS_OUT ?= peers-out
peers: peers-env
	$(GO) run ./cmd/memval-peers -python $(abspath $(TRUTH_VENV))/bin/python -out $(PEERS_OUT)

build:
	CGO_ENABLED=1 $(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/memval

# Tests that need PyTorch skip without it (and say so at the end), except
# under CI=true, where they fail. The second pass builds and tests without
# cgo: only the nvml device needs it. The torch truth tests of ./scenarios
# take several minutes on 2 cores, past go test's default 10-minute limit
# when the machine is busy, hence -timeout.
test:
	$(GO) vet ./...
	@skips=$$(mktemp); \
	MEMVAL_SKIPLOG=$$skips $(GO) test -count=1 -timeout 60m ./...; rc=$$?; \
	n=$$(wc -l < $$skips | tr -d ' '); rm -f $$skips; \
	if [ "$$n" != 0 ]; then \
	  echo "make test: $$n tests skipped: the truth environment (torch 2.x, transformers) is not importable with MEMVAL_PYTHON=$(MEMVAL_PYTHON)."; \
	  echo "  To run them: make truth-test (installs scenarios/requirements-truth.txt into .venv-truth),"; \
	  echo "  or point MEMVAL_PYTHON at an interpreter with torch 2.x and transformers."; \
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
