package analytic

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	ok := []struct {
		in   string
		want uint64
	}{
		{"80GiB", 80 * GiB}, {"80 GiB", 80 * GiB}, {"80GB", 80e9}, {"80gb", 80e9}, {"1.5TiB", 3 * TiB / 2},
		{"512MiB", 512 * MiB}, {"1024", 1024}, {"7B", 7}, {"2kB", 2000}, {"0.5KiB", 512}, {"81559MiB", 81559 * MiB},
		{" 1 TB ", 1e12}, {"4EiB", 0},
	}
	for _, c := range ok[:len(ok)-1] {
		got, err := ParseBytes(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseBytes(%q): got %d %v, want %d", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "empty"}, {"80G", "ambiguous"}, {"80 furlongs", "unknown unit"}, {"GiB", "no number"},
		{"-1GiB", "non-negative"}, {"1e30TB", "2^62"}, {"99999999999TiB", "2^62"}, {"NaNGB", "unknown unit"}, {"nan GB", "not a number"}, {"inf GB", "not a number"},
		{"0x10GB", "not a number"}, {"4EiB", "unknown unit"},
	}
	for _, c := range bad {
		_, err := ParseBytes(c.in)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseBytes(%q): got %v, want an error saying %q", c.in, err, c.msg)
		}
	}
	if _, err := ParseBytes("5000000TiB"); !errors.Is(err, ErrOverflow) {
		t.Errorf("got %v, want ErrOverflow", err)
	}
}

func TestFormatBytes(t *testing.T) {
	for _, c := range []struct {
		b         uint64
		bin, deci string
	}{
		{17, "17 B", "17 B"}, {3 * KiB, "3.0 KiB", "3.1 kB"}, {512 * MiB, "512.0 MiB", "536.9 MB"},
		{81559 * MiB, "79.6 GiB", "85.5 GB"}, {2 * TiB, "2048.0 GiB", "2199.0 GB"},
	} {
		if got := FormatBytes(c.b); got != c.bin {
			t.Errorf("FormatBytes(%d): got %q, want %q", c.b, got, c.bin)
		}
		if got := FormatBytesDecimal(c.b); got != c.deci {
			t.Errorf("FormatBytesDecimal(%d): got %q, want %q", c.b, got, c.deci)
		}
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"80GiB", "1.5TiB", "80G", "", "1e400GB", "-0", "3.999999999999999999MB", "9223372036854775807TB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBytes(s)
		if err != nil {
			return
		}
		if b > MaxBytes {
			t.Fatalf("ParseBytes(%q) = %d, over MaxBytes", s, b)
		}
		// What FormatBytes prints parses back to within its rounding.
		back, err := ParseBytes(FormatBytes(b))
		if err != nil {
			t.Fatalf("ParseBytes(FormatBytes(%d) = %q): %v", b, FormatBytes(b), err)
		}
		if d := float64(back) - float64(b); d > 0.05*float64(b)+1 || -d > 0.05*float64(b)+1 {
			t.Fatalf("round trip of %d: got %d", b, back)
		}
	})
}

func TestGPUByName(t *testing.T) {
	g, err := GPUByName("H100-80GB")
	if err != nil || g.Bytes != 81559*MiB {
		t.Errorf("h100-80gb: got %+v %v, want 81559 MiB", g, err)
	}
	for alias, name := range map[string]string{"h100": "h100-80gb", "H100_NVL": "h100-94gb", "a100": "a100-80gb", "rtx 4090": "rtx-4090"} {
		if g, err := GPUByName(alias); err != nil || g.Name != name {
			t.Errorf("GPUByName(%q): got %q %v, want %q", alias, g.Name, err, name)
		}
	}
	_, err = GPUByName("tpu-v5")
	if err == nil || !strings.Contains(err.Error(), "mi300x") {
		t.Errorf("unknown GPU: got %v, want the list of choices", err)
	}
	for _, g := range GPUs() {
		if g.Bytes < 15*GiB || g.Bytes > 200*GiB || g.Nominal == "" || g.Source == "" {
			t.Errorf("GPU %s: implausible entry %+v", g.Name, g)
		}
	}
}

func ExampleGPUByName() {
	g, _ := GPUByName("h100-80gb")
	fmt.Println(g.Model, g.Nominal, FormatBytes(g.Bytes))
	// Output: NVIDIA H100 80GB HBM3 (SXM5) 80 GB 79.6 GiB
}
