// Package torchtest is the one gate of the tests that run PyTorch (the
// scenario script, the simulator against autograd): they run when the
// interpreter has the truth environment (scenarios/requirements-truth.txt:
// torch 2.x, whose CPU rules the breakdown follows, and transformers), fail
// when CI=true and it has not, and otherwise
// skip, counting themselves in the file that MEMVAL_SKIPLOG names so that
// `make test` can end by saying how many were skipped and how to run them.
package torchtest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// SkipLogEnv names the file skipped tests append a line to.
const SkipLogEnv = "MEMVAL_SKIPLOG"

var (
	once   sync.Map // interpreter -> *probe
	logMu  sync.Mutex
	ciMode = os.Getenv("CI") == "true"
)

type probe struct {
	once sync.Once
	err  error
}

// probe fails unless torch 2.x and transformers import.
const probe2 = `import sys, torch, transformers
if int(torch.__version__.split(".")[0]) < 2:
    sys.exit("torch %s is older than 2 (the breakdown follows torch 2.x; make truth-env installs it)" % torch.__version__)`

// Available reports whether python imports torch 2.x and transformers, and
// why not (the interpreter's own error). The answer is cached per
// interpreter.
func Available(python string) error {
	v, _ := once.LoadOrStore(python, &probe{})
	p := v.(*probe)
	p.once.Do(func() {
		out, err := exec.Command(python, "-c", probe2).CombinedOutput()
		if err != nil {
			p.err = fmt.Errorf("the truth environment (torch 2.x, transformers) is not importable with MEMVAL_PYTHON=%s: %s",
				python, strings.TrimSpace(string(out)))
		}
	})
	return p.err
}

// Need returns when python has torch 2.x and transformers. Otherwise it fails the test under
// CI=true and skips it elsewhere, after noting the skip in MEMVAL_SKIPLOG.
func Need(t testing.TB, python string) {
	t.Helper()
	err := Available(python)
	if err == nil {
		return
	}
	if ciMode {
		t.Fatal(err)
	}
	if path := os.Getenv(SkipLogEnv); path != "" {
		logMu.Lock()
		if f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); ferr == nil {
			fmt.Fprintln(f, t.Name())
			f.Close()
		}
		logMu.Unlock()
	}
	t.Skip(err)
}
