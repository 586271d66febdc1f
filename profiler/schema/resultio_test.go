package schema

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteReadResult(t *testing.T) {
	dir := t.TempDir()
	in := &Result{Tool: "memval test", Device: "sim", Simulated: true, Command: []string{"a", "b"},
		Summary:   Summary{GPU: 0, Samples: 3, PeakDeviceBytes: 1 << 33, Status: StatusOK},
		Framework: &Framework{Params: 124439808}}
	if err := WriteResult(dir, in); err != nil {
		t.Fatal(err)
	}
	if in.Schema != ResultSchema {
		t.Errorf("got schema %d after WriteResult, want %d", in.Schema, ResultSchema)
	}
	out, err := ReadResult(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("got %+v, want %+v", out, in)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("got %d files in the folder, want only result.json (no temporary left)", len(entries))
	}
}

func TestReadResultErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"newer schema", `{"schema": 99}`, "upgrade memval"},
		{"no schema", `{"tool": "x"}`, "field schema: missing"},
		{"schema text", `{"schema": "one"}`, "field schema"},
		{"zero schema", `{"schema": 0}`, "want 1 to"},
		{"wrong type", `{"schema": 1, "summary": {"peak_device_bytes": "big"}}`, "field summary.peak_device_bytes"},
		{"syntax", "{\"schema\": 1,\n \"tool\": }", "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "result.json")
			os.WriteFile(path, []byte(tc.in), 0o644)
			_, err := ReadResult(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got error %v, want one naming %s and saying %q", err, path, tc.want)
			}
		})
	}
}

func FuzzReadResult(f *testing.F) {
	f.Add([]byte(`{"schema":1,"tool":"t","device":"sim","simulated":true,"summary":{"gpu":0}}`))
	f.Add([]byte(`{"schema":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "result.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Skip(err)
		}
		r, err := ReadResult(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if r.Schema < 1 || r.Schema > ResultSchema {
			t.Fatalf("accepted schema %d", r.Schema)
		}
		if err := WriteResult(dir, r); err != nil {
			t.Fatalf("write back: %v", err)
		}
		if _, err := ReadResult(path); err != nil {
			t.Fatalf("read back: %v", err)
		}
	})
}
