package model

import "testing"

// TestEveryConfigFamilyMeasured: every family a config.json can name has a
// layer program checked against its transformers class on the CPU
// (Measured; the truth tests in scenarios/*truth*_test.go), so a family
// added without its truth cases fails here.
func TestEveryConfigFamilyMeasured(t *testing.T) {
	for _, name := range ConfigFamilies() {
		f, _ := FamilyOf(name)
		if !f.Measured {
			t.Errorf("family %s reads a config.json but its layer program is not Measured", name)
		}
	}
	if f, _ := FamilyOf("vanilla"); f.Config != nil {
		t.Error("vanilla has a config.json mapping; it is the seed article's model")
	}
}
