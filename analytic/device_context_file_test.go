package analytic

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodContextFile = `{"cuda_context_bytes": 524288000, "gpu": "NVIDIA H100 80GB HBM3", "torch": "2.5.1", "cuda": "12.4",
 "used_before_bytes": 1048576, "used_after_bytes": 527433728, "torch_reserved_bytes": 2097152}`

func TestParseContextFile(t *testing.T) {
	for _, tc := range []struct {
		name, data, err string
	}{
		{"good", goodContextFile, ""},
		{"unknown field", `{"cuda_context_bytes": 1, "gpu": "x", "torch": "2", "used_after_bytes": 1, "extra": 1}`, "unknown field"},
		{"sum", strings.Replace(goodContextFile, "524288000", "524288001", 1), "is not used_after_bytes"},
		{"after below before", strings.Replace(goodContextFile, "527433728", "1048576", 1), "below used_before_bytes"},
		{"zero", `{"cuda_context_bytes": 0, "gpu": "x", "torch": "2", "used_before_bytes": 0, "used_after_bytes": 0, "torch_reserved_bytes": 0}`, "is 0"},
		{"no gpu", strings.Replace(goodContextFile, "NVIDIA H100 80GB HBM3", "", 1), "gpu is empty"},
		{"two values", goodContextFile + " {}", "more than one"},
		{"not json", "520MiB", "not a context file"},
		{"overflow", `{"cuda_context_bytes": 3, "gpu": "x", "torch": "2", "used_before_bytes": 18446744073709551615, "used_after_bytes": 1, "torch_reserved_bytes": 2}`, "below used_before_bytes"},
	} {
		c, err := ParseContextFile([]byte(tc.data))
		if tc.err == "" {
			if err != nil || c.ContextBytes != 500<<20 {
				t.Errorf("%s: got %+v, %v", tc.name, c, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: got error %v, want one saying %q", tc.name, err, tc.err)
		}
	}
}

func TestParseContextOption(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "context.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(goodContextFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"gpu": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v, kind, err string
		bytes        uint64
	}{
		{"520MiB", "given", "", 520 << 20},
		{good, "measured", "", 500 << 20},
		{bad, "", "context file " + bad, 0},
		{filepath.Join(dir, "missing.json"), "", "neither a size", 0},
		{"", "", "neither a size", 0},
	} {
		f, err := ParseContextOption(tc.v)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %v, want an error saying %q", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil || f.Kind != tc.kind || f.Bytes != tc.bytes {
			t.Errorf("%q: got %+v, %v; want %s %d", tc.v, f, err, tc.kind, tc.bytes)
		}
	}
	f, _ := ParseContextOption(good)
	if !strings.Contains(f.Source, good) || !strings.Contains(f.Source, "torch 2.5.1") {
		t.Errorf("source %q does not cite the file and torch", f.Source)
	}
}

func FuzzParseContextFile(f *testing.F) {
	f.Add([]byte(goodContextFile))
	f.Add([]byte(`{"cuda_context_bytes": 18446744073709551615}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseContextFile(data)
		if err == nil && (c.ContextBytes == 0 || c.UsedAfterBytes-c.UsedBeforeBytes-c.TorchReservedBytes != c.ContextBytes) {
			t.Errorf("accepted inconsistent %+v", c)
		}
	})
}
