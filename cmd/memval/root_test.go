package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCLI runs memval with args and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errw)
	return code, out.String(), errw.String()
}

func TestRootVersionAndHelp(t *testing.T) {
	code, out, _ := runCLI(t, "--version")
	if code != 0 || !strings.Contains(out, version) {
		t.Fatalf("--version: got code %d, output %q; want 0 and %q", code, out, version)
	}
	code, out, _ = runCLI(t, "--help")
	if code != 0 || !strings.Contains(out, "memval") {
		t.Fatalf("--help: got code %d, output %q", code, out)
	}
	code, out, _ = runCLI(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "bash completion") {
		t.Fatalf("completion bash: got code %d, output starting %.80q", code, out)
	}
}

func TestRootUnknownCommandIsUsageError(t *testing.T) {
	code, _, errw := runCLI(t, "no-such-command")
	if code != exitUsage {
		t.Fatalf("got exit %d, want %d (stderr %q)", code, exitUsage, errw)
	}
	code, _, errw = runCLI(t, "--no-such-flag")
	if code != exitUsage {
		t.Fatalf("got exit %d, want %d (stderr %q)", code, exitUsage, errw)
	}
}
