package analytic

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
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
	got, warns, err := c.Apply(testEstimate(), model.Arch{}, model.Workload{Batch: 2, Seq: 256})
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
	_, warns, err := c.Apply(e, model.Arch{}, model.Workload{Batch: 64, Seq: 4096, Precision: model.BF16Mixed})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	for _, want := range []string{"batch 64 is outside the fitted range 1..8", "seq 4096", "tokens (batch*seq) 262144", "precision bf16"} {
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
	got, _, err := c.Apply(testEstimate(), model.Arch{}, model.Workload{Batch: 2, Seq: 256})
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
		_, _, err = c.Apply(testEstimate(), model.Arch{}, model.Workload{Batch: 1, Seq: 1})
		if (err != nil) != (c.Formula != "seed") {
			t.Fatalf("formula %q applied to a seed estimate: got %v", c.Formula, err)
		}
	})
}

func ExampleCalibration_Apply() {
	c := &Calibration{Schema: CalibrationSchema, Formula: "seed", Fitted: FittedRange{Runs: 10, Params: Range{0, 1e9}, Batch: Range{1, 8}, Seq: Range{1, 2048}, Tokens: Range{1, 16384}},
		CalibratedFit: CalibratedFit{Coefficients: []Coefficient{{Term: "weights", Unit: "params", Value: 18, Low: 17, High: 19, Original: 16}}, Constant: 512 << 20}}
	e := Estimate{Formula: "seed", Params: 124e6, Terms: []Term{{Name: "weights", Feature: 124e6, Coef: 16, Bytes: 16 * 124e6}}}
	got, warns, _ := c.Apply(e, model.Arch{}, model.Workload{Batch: 16, Seq: 1024})
	fmt.Printf("peak %.2f GiB\n", float64(got.Peak)/(1<<30))
	fmt.Println(warns)
	// Output:
	// peak 2.58 GiB
	// [batch 16 is outside the fitted range 1..8: extrapolating]
}

// A phased estimate: Peak is the larger phase, and Apply must keep that
// rule rather than add both phases up.
func phasedEstimate() Estimate {
	return Estimate{Formula: "breakdown", Params: 1000000, Terms: []Term{
		{Name: "weights", Group: GroupWeights, Feature: 1000, Unit: "params", Coef: 4, Bytes: 4000},
		{Name: "cuda_context", Group: GroupOverhead, Feature: 1, Unit: "1", Coef: 1000, Bytes: 1000},
		{Name: "mlp.act", Group: GroupActivations, Feature: 100, Unit: "B*S*H*L", Coef: 10, Bytes: 1000, Peak: true, Phase: PhaseForward},
		{Name: "attn.scores", Group: GroupActivations, Feature: 100, Unit: "B*h*S*S*L", Coef: 4, Bytes: 400, Peak: true, Phase: PhaseForward},
		{Name: "logits_grad", Group: GroupLogits, Feature: 10, Unit: "B*S*V", Coef: 8, Bytes: 80, Peak: true, Phase: PhaseForward},
		{Name: "gradients", Group: GroupGradients, Feature: 1000, Unit: "params", Coef: 4, Bytes: 4000, Peak: true, Phase: PhaseOptimizer},
		{Name: "allocator_fragmentation", Group: GroupOverhead, Feature: 1480, Unit: "activation bytes", Coef: 0, Peak: true, Phase: PhaseForward},
	}}
}

func TestCalibrationApplyKeepsPhases(t *testing.T) {
	c := &Calibration{Schema: CalibrationSchemaTerms, Formula: "breakdown", CalibratedFit: CalibratedFit{
		Coefficients: []Coefficient{{Term: "mlp.act", Unit: "B*S*H*L", Value: 20, Low: 19, High: 21, Original: 10}},
		Constant:     2000, ConstantTerms: []string{"cuda_context"},
	}}
	got, _, err := c.Apply(phasedEstimate(), model.Arch{}, model.Workload{Batch: 1, Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	// steady: weights + constant; forward: + 2000 + 400 + 80; optimizer: + 4000.
	wantSteady, wantPeak := uint64(4000+2000), uint64(4000+2000+4000)
	if got.Steady != wantSteady || got.Peak != wantPeak {
		t.Errorf("got steady %d peak %d, want %d and %d (the larger phase, not the sum %d)", got.Steady, got.Peak, wantSteady, wantPeak, 4000+2000+2480+4000)
	}
	for _, term := range got.Terms {
		if term.Name == "gradients" && term.Phase != PhaseOptimizer {
			t.Errorf("gradients: got phase %q, want %q", term.Phase, PhaseOptimizer)
		}
	}
}

func TestCalibrationApplyPerCategory(t *testing.T) {
	c := &Calibration{Schema: CalibrationSchema, Formula: "breakdown", CalibratedFit: CalibratedFit{
		Terms: FitPerCategory,
		Coefficients: []Coefficient{
			{Term: CategoryPerParam, Unit: "x formula", Scale: true, Value: 1.5, Low: 1.4, High: 1.6, Original: 1},
			{Term: CategoryActivations, Unit: "x formula", Scale: true, Value: 2, Low: 1.9, High: 2.1, Original: 1},
			{Term: CategoryScores, Unit: "x formula", Scale: true, Value: 0.5, Low: 0.4, High: 0.6, Original: 1},
			{Term: CategoryLogits, Unit: "x formula", Scale: true, Value: 3, Low: 2, High: 4, Original: 1},
		},
		Constant: 700, ConstantTerms: []string{"cuda_context"},
	}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.Apply(phasedEstimate(), model.Arch{}, model.Workload{Batch: 1, Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"weights": 6000, "mlp.act": 2000, "attn.scores": 200, "logits_grad": 240, "gradients": 6000, "allocator_fragmentation": 0, CalibratedTerm: 700}
	for _, term := range got.Terms {
		w, ok := want[term.Name]
		if !ok {
			t.Errorf("unexpected term %q", term.Name)
			continue
		}
		if term.Bytes != w {
			t.Errorf("%s: got %d bytes, want %d", term.Name, term.Bytes, w)
		}
		delete(want, term.Name)
	}
	if len(want) != 0 {
		t.Errorf("missing terms %v", want)
	}
	// optimizer 6000+700+6000 = 12700 beats forward 6000+700+2000+200+240.
	if got.Steady != 6700 || got.Peak != 12700 {
		t.Errorf("got steady %d peak %d, want 6700 and 12700", got.Steady, got.Peak)
	}
}

func TestCalibrationValidateTermsMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Calibration)
		want string
	}{
		{"unknown mode", func(c *Calibration) { c.Terms = "groups" }, "field terms"},
		{"category in a version 1 file", func(c *Calibration) { c.Schema, c.Terms = 1, FitPerCategory }, "needs schema 2"},
		{"not a category", func(c *Calibration) { c.Schema, c.Terms = 2, FitPerCategory }, `"weights+gradients" is not a category`},
	} {
		c := testCalibration()
		tc.edit(c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	c := testCalibration()
	c.Schema = 1
	if err := c.Validate(); err != nil {
		t.Errorf("a version 1 per-term file: got %v, want it to load", err)
	}
}
