package main

import (
	"strings"
	"testing"
)

func TestProfileSimRanks(t *testing.T) {
	code, _, errw := runCLI(t, "profile", "--device", "sim", "--sim-ranks", "8", "--sim-steps", "2", "--sim-seq", "64", "--out", t.TempDir(), "--metrics", "127.0.0.1:0")
	if code != 0 || !strings.Contains(errw, "rank 7 ") || !strings.Contains(errw, "serving metrics at http://127.0.0.1:") {
		t.Errorf("exit %d, stderr:\n%s", code, errw)
	}
	for _, c := range []struct{ args, want string }{
		{"--sim-ranks 9", "--sim-ranks 9"},
		{"--metrics 127.0.0.1:notaport", "--metrics"},
	} {
		code, _, errw := runCLI(t, append([]string{"profile", "--device", "sim", "--out", t.TempDir()}, strings.Fields(c.args)...)...)
		if code != 2 || !strings.Contains(errw, c.want) {
			t.Errorf("%s: exit %d, stderr %q", c.args, code, errw)
		}
	}
}
