package analytic

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testCalibration() *Calibration {
	return &Calibration{
		Schema: CalibrationSchema, Formula: "seed", Truth: "device", GPU: "NVIDIA H100 80GB HBM3",
		Fitted: FittedRange{Runs: 12, Params: Range{1e6, 4e8}, Batch: Range{1, 8}, Seq: Range{128, 1024}, Tokens: Range{128, 8192},
			Precisions: []string{"fp32"}, Attention: []string{"math"}, Checkpointing: []string{"none"}},
		CalibratedFit: CalibratedFit{
			Quantity: "peak",
			Coefficients: []Coefficient{
				{Term: "weights+gradients", Members: []string{"weights", "gradients"}, Ratios: []float64{1, 1}, Unit: "params", Value: 10, Low: 9, High: 11, Original: 8},
				{Term: "activations", Unit: "B*S*H*L", Value: 20, Low: 18, High: 22, Original: 14},
			},
			Constant:      500 << 20,
			ConstantTerms: []string{"context"},
		},
	}
}

func testEstimate() Estimate {
	terms := []Term{
		{Name: "weights", Feature: 1000, Coef: 4, Bytes: 4000},
		{Name: "gradients", Feature: 1000, Coef: 4, Bytes: 4000},
		{Name: "activations", Feature: 100, Coef: 14, Bytes: 1400, Peak: true},
		{Name: "logits", Feature: 10, Coef: 6, Bytes: 60, Peak: true},
		{Name: "context", Feature: 1, Coef: 300 << 20, Bytes: 300 << 20},
	}
	return Estimate{Formula: "seed", Params: 1000000, Terms: terms}
}

func TestCalibrationApply(t *testing.T) {
	c := testCalibration()
	got, warns, err := c.Apply(testEstimate(), Arch{}, Workload{Batch: 2, Seq: 256})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("got warnings %v, want none", warns)
	}
	// weights and gradients scale by 10/8, activations take 20, logits keep
	// 6, the context is replaced by the fitted constant.
	wantPeak := uint64(5000 + 5000 + 2000 + 60 + 500<<20)
	wantSteady := uint64(5000 + 5000 + 500<<20)
	if got.Peak != wantPeak || got.Steady != wantSteady {
		t.Errorf("got peak %d steady %d, want %d and %d", got.Peak, got.Steady, wantPeak, wantSteady)
	}
	for _, term := range got.Terms {
		if term.Name == "context" {
			t.Errorf("term context is still there; want it folded into %q", CalibratedTerm)
		}
	}
	if got.Formula != "calibrated-seed" {
		t.Errorf("formula: got %q, want calibrated-seed", got.Formula)
	}
}

func TestCalibrationApplyWarnsWhenExtrapolating(t *testing.T) {
	c := testCalibration()
	e := testEstimate()
	e.Formula = "breakdown"
	_, warns, err := c.Apply(e, Arch{}, Workload{Batch: 64, Seq: 4096, Precision: BF16Mixed})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	for _, want := range []string{`fitted for formula "seed"`, "batch 64 is outside the fitted range 1..8", "seq 4096", "tokens (batch*seq) 262144", "precision bf16"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings %q lack %q", all, want)
		}
	}
}

func TestCalibrationSteadyFit(t *testing.T) {
	c := testCalibration()
	c.Steady = &CalibratedFit{Quantity: "steady", Coefficients: []Coefficient{
		{Term: "weights+gradients", Members: []string{"weights", "gradients"}, Unit: "params", Value: 12, Low: 11, High: 13, Original: 8},
	}, Constant: 100, ConstantTerms: []string{"context"}}
	got, _, err := c.Apply(testEstimate(), Arch{}, Workload{Batch: 2, Seq: 256})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(6000 + 6000 + 100); got.Steady != want {
		t.Errorf("steady: got %d, want %d", got.Steady, want)
	}
}

func TestLoadCalibrationRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calibration.json")
	c := testCalibration()
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCalibration(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Formula != c.Formula || len(got.Coefficients) != 2 || got.Constant != c.Constant || got.Coefficients[0].Members[1] != "gradients" {
		t.Errorf("got %+v, want %+v", got, c)
	}
}

func TestLoadCalibrationErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"not json", `{`, "not a calibration file"},
		{"no schema", `{"formula":"seed"}`, "field schema: missing"},
		{"newer schema", `{"schema":99,"formula":"seed"}`, "upgrade memval"},
		{"no formula", `{"schema":1}`, "field formula"},
		{"negative value", `{"schema":1,"formula":"seed","coefficients":[{"term":"w","value":-1}]}`, "coefficients[0].value"},
		{"no term", `{"schema":1,"formula":"seed","coefficients":[{"value":1,"high":1}]}`, "coefficients[0].term"},
		{"twice", `{"schema":1,"formula":"seed","coefficients":[{"term":"w","value":1,"high":1},{"term":"w","value":1,"high":1}]}`, `term "w" appears twice`},
		{"interval", `{"schema":1,"formula":"seed","coefficients":[{"term":"w","value":3,"low":1,"high":2}]}`, "does not hold value 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cal.json")
			if err := os.WriteFile(path, []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCalibration(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error naming %s and saying %q", err, path, tc.want)
			}
		})
	}
}

func FuzzParseCalibration(f *testing.F) {
	f.Add([]byte(`{"schema":1,"formula":"seed","coefficients":[{"term":"w","value":1,"low":0,"high":2,"original":1}]}`))
	f.Add([]byte(`{"schema":1,"formula":"x","steady":{"coefficients":[{"term":"a","members":["a","b"],"ratios":[1]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCalibration(data)
		if err != nil {
			return
		}
		for _, co := range c.Coefficients {
			if co.Value < 0 || math.IsNaN(co.Value) {
				t.Fatalf("accepted coefficient %+v", co)
			}
		}
		if _, _, err := c.Apply(testEstimate(), Arch{}, Workload{Batch: 1, Seq: 1}); err != nil {
			t.Fatal(err)
		}
	})
}

func ExampleCalibration_Apply() {
	c := &Calibration{Schema: CalibrationSchema, Formula: "seed", Fitted: FittedRange{Runs: 10, Params: Range{0, 1e9}, Batch: Range{1, 8}, Seq: Range{1, 2048}, Tokens: Range{1, 16384}},
		CalibratedFit: CalibratedFit{Coefficients: []Coefficient{{Term: "weights", Unit: "params", Value: 18, Low: 17, High: 19, Original: 16}}, Constant: 512 << 20}}
	e := Estimate{Formula: "seed", Params: 124e6, Terms: []Term{{Name: "weights", Feature: 124e6, Coef: 16, Bytes: 16 * 124e6}}}
	got, warns, _ := c.Apply(e, Arch{}, Workload{Batch: 16, Seq: 1024})
	fmt.Printf("peak %.2f GiB\n", float64(got.Peak)/(1<<30))
	fmt.Println(warns)
	// Output:
	// peak 2.58 GiB
	// [batch 16 is outside the fitted range 1..8: extrapolating]
}
