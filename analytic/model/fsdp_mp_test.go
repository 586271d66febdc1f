package model

import "testing"

func TestParseFSDPMixed(t *testing.T) {
	cases := []struct {
		in      string
		p, r    float64
		wantErr bool
	}{
		{"", 0, 0, false}, {"bf16", 2, 2, false}, {"fp16", 2, 2, false}, {"bf16:fp32", 2, 4, false},
		{"fp16:bf16", 2, 2, false}, {"fp32", 0, 0, true}, {"bf16:", 0, 0, true}, {":fp32", 0, 0, true}, {"BF16", 0, 0, true},
	}
	for _, c := range cases {
		p, r, err := ParseFSDPMixed(c.in)
		if (err != nil) != c.wantErr || p != c.p || r != c.r {
			t.Errorf("ParseFSDPMixed(%q) = %v, %v, %v; want %v, %v, error %v", c.in, p, r, err, c.p, c.r, c.wantErr)
		}
	}
}

func FuzzParseFSDPMixed(f *testing.F) {
	for _, s := range []string{"", "bf16", "bf16:fp32", "fp16:", ":", "fp32:fp32"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, r, err := ParseFSDPMixed(s)
		if err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("%q: error %T, want *FieldError", s, err)
			}
			return
		}
		if s != "" && (p != 2 || (r != 2 && r != 4)) {
			t.Fatalf("%q: param %v reduce %v bytes", s, p, r)
		}
	})
}
