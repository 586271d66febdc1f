package alloc

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImportsNothingOfMemval: the estimate and the simulated device both
// build on this package, so it must not depend on either (nor on the
// formulas): it is PyTorch's rules only.
func TestImportsNothingOfMemval(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-deps", "-test=false", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 3 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), out)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/memval/memval/") && d != "github.com/memval/memval/analytic/alloc" {
			t.Errorf("analytic/alloc depends on %s; it may use the standard library only", d)
		}
	}
}
