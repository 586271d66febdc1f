package analytic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/memval/memval/analytic/model"
)

// CalibrationSchema is the newest version of calibration.json this code
// reads and writes. LoadCalibration refuses newer versions. Version 1 holds
// per-term fits only; version 2 adds CalibratedFit.Terms (per-category
// fits). A file with only per-term fits is written as version 1
// (CalibrationSchemaTerms), which older memval still reads.
const CalibrationSchema = 2

// CalibrationSchemaTerms is the version written when every fit is per term.
const CalibrationSchemaTerms = 1

// Fit modes (CalibratedFit.Terms).
const (
	// FitPerTerm: one coefficient per term name (or merged names), in
	// bytes per unit of the term's Feature. The empty string means this.
	FitPerTerm = "term"
	// FitPerCategory: one dimensionless factor per term category
	// (TermCategory) on the formula's own bytes of that category.
	FitPerCategory = "category"
)

// Term categories (TermCategory).
const (
	CategoryPerParam    = "per_param"   // weights, gradients, optimizer states: bytes per parameter
	CategoryActivations = "activations" // saved activations and inputs that do not grow with S*S
	CategoryScores      = "scores"      // terms growing with S*S: attention scores, probabilities, dropout masks
	CategoryLogits      = "logits"      // logits and their gradients: terms growing with V
	CategoryKVCache     = "kv_cache"
	CategoryOverhead    = "overhead" // constant terms (Feature 1: the CUDA context) and other overhead
)

// Categories lists the term categories in the order fits report them.
func Categories() []string {
	return []string{CategoryPerParam, CategoryActivations, CategoryScores, CategoryLogits, CategoryKVCache, CategoryOverhead}
}

// TermCategory is the category a per-category calibration scales t with,
// or "" for a term with coefficient 0 (it contributes nothing and is left
// as it is, e.g. allocator_fragmentation before calibration). In order:
// Feature 1 in unit "1" is overhead (a constant); a Unit containing "S*S"
// is scores; group logits or a Unit containing "V" is logits; group
// kv_cache is kv_cache; weights, gradients and optimizer are per_param;
// activations and input are activations; anything else is overhead.
func TermCategory(t Term) string {
	switch {
	case t.Coef == 0:
		return ""
	case t.Feature == 1 && (t.Unit == "1" || t.Unit == ""):
		return CategoryOverhead
	case strings.Contains(t.Unit, "S*S"):
		return CategoryScores
	case t.Group == GroupLogits || strings.Contains(t.Unit, "V"):
		return CategoryLogits
	case t.Group == GroupKVCache:
		return CategoryKVCache
	case t.Group == GroupWeights || t.Group == GroupGradients || t.Group == GroupOptimizer:
		return CategoryPerParam
	case t.Group == GroupActivations || t.Group == GroupInput:
		return CategoryActivations
	}
	return CategoryOverhead
}

// Calibration is calibration.json: one formula's term coefficients refitted
// by `memval fit` on measured runs of one GPU, driver and torch version.
// The embedded CalibratedFit holds the coefficients fitted to the measured
// peak; Steady, when present, those fitted to the steady state.
type Calibration struct {
	Schema    int    `json:"schema"`
	Formula   string `json:"formula"`
	Truth     string `json:"truth"` // what was fitted: device, process, framework, allocated
	GPU       string `json:"gpu"`
	Driver    string `json:"driver"`
	CUDA      string `json:"cuda"`
	Torch     string `json:"torch"`
	Simulated bool   `json:"simulated"`

	Fitted FittedRange `json:"fitted"`
	CalibratedFit
	Steady *CalibratedFit `json:"steady,omitempty"`
	Notes  []string       `json:"notes,omitempty"`
}

// FittedRange describes the runs a calibration was fitted on. Apply warns
// when asked to go outside it.
type FittedRange struct {
	Runs          int      `json:"runs"`
	Params        Range    `json:"params"`
	Batch         Range    `json:"batch"`
	Seq           Range    `json:"seq"`
	Tokens        Range    `json:"tokens"` // B*S
	Precisions    []string `json:"precisions,omitempty"`
	Attention     []string `json:"attention,omitempty"`
	Checkpointing []string `json:"checkpointing,omitempty"`
}

// Range is a closed interval [Min, Max].
type Range struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// Contains reports whether v is in [Min, Max].
func (r Range) Contains(v int64) bool { return v >= r.Min && v <= r.Max }

// CalibratedFit is one least-squares fit: measured bytes ~ sum over
// coefficients of Value * feature + Constant.
type CalibratedFit struct {
	Quantity string `json:"quantity"` // peak or steady
	// Terms is the fit mode: FitPerTerm ("" in version 1 files) or
	// FitPerCategory. Per category, each Coefficient's Term is a category
	// (TermCategory), Scale is true and Value a factor on the formula's
	// bytes of that category (Original 1), applied to every term of the
	// category; ConstantTerms and Dropped still name terms (those of the
	// categories folded into the constant or zero in every fitted run).
	Terms        string        `json:"terms,omitempty"`
	Coefficients []Coefficient `json:"coefficients"`
	// Constant is the fitted bytes that do not scale with any feature: the
	// CUDA context, workspaces, the baseline of the truth, and the terms
	// named in ConstantTerms (constant in every fitted run).
	Constant      uint64   `json:"constant_bytes"`
	ConstantLow   uint64   `json:"constant_low_bytes"`
	ConstantHigh  uint64   `json:"constant_high_bytes"`
	ConstantTerms []string `json:"constant_terms,omitempty"`
	// Dropped terms were zero in every fitted run: their coefficient was
	// not fitted and Apply keeps the formula's.
	Dropped []string `json:"dropped,omitempty"`
	CVError CVError  `json:"cv_error"`
}

// Coefficient is one fitted coefficient. Term is the term's name, or the
// names joined with "+" when Members (terms whose features were
// proportional in every fitted run) were merged into one column; Value is
// in bytes per Unit of the first member's Feature, or, when Scale is true,
// a factor on the formula's own coefficient (the formula's coefficient
// varied between runs, e.g. with precision). Original is the formula's own
// value in the same units. Low and High bound a confidence interval (Level,
// e.g. 0.95); AtBound means the non-negativity constraint held the value at
// zero, and no interval is given.
type Coefficient struct {
	Term     string    `json:"term"`
	Members  []string  `json:"members,omitempty"`
	Ratios   []float64 `json:"ratios,omitempty"` // member feature / first member feature, per member
	Unit     string    `json:"unit"`
	Scale    bool      `json:"scale,omitempty"`
	Value    float64   `json:"value"`
	Low      float64   `json:"low"`
	High     float64   `json:"high"`
	Level    float64   `json:"level"`
	AtBound  bool      `json:"at_bound,omitempty"`
	Original float64   `json:"original"`
}

// CVError is the error after calibration, measured on runs left out of the
// fit (cross validation), as fractions (0.05 = 5 %).
type CVError struct {
	MedianAPE float64 `json:"median_ape"`
	MaxAPE    float64 `json:"max_ape"`
	Method    string  `json:"method"` // e.g. "leave-one-out", "5-fold"
}

// LoadCalibration reads and checks a calibration.json. Errors name the file
// and the field.
func LoadCalibration(path string) (*Calibration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read calibration: %w", err)
	}
	c, err := ParseCalibration(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCalibration decodes and checks calibration.json bytes.
func ParseCalibration(data []byte) (*Calibration, error) {
	var c Calibration
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not a calibration file: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the schema and that every coefficient is usable.
func (c *Calibration) Validate() error {
	switch {
	case c.Schema == 0:
		return errors.New("field schema: missing; write the file with memval fit")
	case c.Schema > CalibrationSchema:
		return fmt.Errorf("field schema: version %d is newer than this memval reads (%d): upgrade memval", c.Schema, CalibrationSchema)
	case c.Schema < 0:
		return fmt.Errorf("field schema: %d is not a version", c.Schema)
	case c.Formula == "":
		return errors.New("field formula: missing; name the formula the coefficients belong to")
	}
	if c.Schema < 2 && (c.Terms == FitPerCategory || c.Steady != nil && c.Steady.Terms == FitPerCategory) {
		return fmt.Errorf("field terms: %q needs schema 2, the file says %d", FitPerCategory, c.Schema)
	}
	if err := c.CalibratedFit.validate(""); err != nil {
		return err
	}
	if c.Steady != nil {
		if err := c.Steady.validate("steady."); err != nil {
			return err
		}
	}
	return nil
}

func (f *CalibratedFit) validate(prefix string) error {
	switch f.Terms {
	case "", FitPerTerm:
	case FitPerCategory:
		for i, co := range f.Coefficients {
			if !slices.Contains(Categories(), co.Term) {
				return fmt.Errorf("field %scoefficients[%d].term: %q is not a category; want one of %s", prefix, i, co.Term, strings.Join(Categories(), ", "))
			}
		}
	default:
		return fmt.Errorf("field %sterms: %q; want %q or %q", prefix, f.Terms, FitPerTerm, FitPerCategory)
	}
	seen := map[string]bool{}
	for i, co := range f.Coefficients {
		field := fmt.Sprintf("%scoefficients[%d]", prefix, i)
		if co.Term == "" {
			return fmt.Errorf("field %s.term: missing", field)
		}
		names := co.Members
		if len(names) == 0 {
			names = []string{co.Term}
		}
		for _, n := range names {
			if seen[n] {
				return fmt.Errorf("field %s: term %q appears twice", field, n)
			}
			seen[n] = true
		}
		if len(co.Ratios) != 0 && len(co.Ratios) != len(co.Members) {
			return fmt.Errorf("field %s.ratios: %d ratios for %d members", field, len(co.Ratios), len(co.Members))
		}
		for name, v := range map[string]float64{"value": co.Value, "low": co.Low, "high": co.High, "original": co.Original} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("field %s.%s: %v; want a finite number >= 0", field, name, v)
			}
		}
		if !co.AtBound && (co.Low > co.Value || co.Value > co.High) {
			return fmt.Errorf("field %s: interval [%g, %g] does not hold value %g", field, co.Low, co.High, co.Value)
		}
	}
	return nil
}

// Save writes c as indented JSON to path.
func (c *Calibration) Save(path string) error {
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write calibration: %w", err)
	}
	return nil
}

// Write encodes c as indented JSON.
func (c *Calibration) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("encode calibration: %w", err)
	}
	return nil
}

// CalibratedTerm is the name of the term Apply adds for the fitted
// constant.
const CalibratedTerm = "calibrated constant"

// Apply recomputes e with the fitted coefficients: term by term, by name;
// terms the calibration does not name keep their coefficient; terms folded
// into the constant are replaced by one "calibrated constant" term. A
// per-category fit (Terms FitPerCategory) multiplies the coefficient of
// every term of a category (TermCategory) by the category's factor and
// replaces the terms of a category folded into the constant. Bytes =
// ceil(Coef * Feature); Steady and Peak are then (*Estimate).Totals of the
// terms (phases kept: Peak is the largest phase, not the sum of all terms),
// with the peak fit; Steady comes from the steady fit when the file has one. The warnings say when a, w or e lie outside what
// the calibration was fitted on (params, batch, seq, tokens, precision,
// attention, checkpointing): the numbers are then an extrapolation. An
// estimate of another formula is refused (ErrCalibrationMismatch).
func (c *Calibration) Apply(e Estimate, a model.Arch, w model.Workload) (Estimate, []string, error) {
	if c == nil {
		return e, nil, errors.New("no calibration")
	}
	if err := c.CheckFor(e.Formula); err != nil {
		return e, nil, err
	}
	var warns []string
	fr := c.Fitted
	check := func(name string, v int64, r Range) {
		if fr.Runs > 0 && !r.Contains(v) {
			warns = append(warns, fmt.Sprintf("%s %d is outside the fitted range %d..%d: extrapolating", name, v, r.Min, r.Max))
		}
	}
	check("params", e.Params, fr.Params)
	check("batch", int64(w.Batch), fr.Batch)
	check("seq", int64(w.Seq), fr.Seq)
	check("tokens (batch*seq)", int64(w.Batch)*int64(w.Seq), fr.Tokens)
	checkSet := func(name, v, def string, set []string) {
		if v == "" {
			v = def
		}
		if len(set) > 0 && !slices.Contains(set, v) {
			warns = append(warns, fmt.Sprintf("%s %s was not among the fitted runs (%v): extrapolating", name, v, set))
		}
	}
	checkSet("precision", string(w.Precision), string(model.FP32), fr.Precisions)
	checkSet("attention", string(w.Attention), string(model.MathAttention), fr.Attention)
	checkSet("checkpointing", string(w.Checkpointing), string(model.NoCheckpointing), fr.Checkpointing)

	peakTerms, pw := c.CalibratedFit.apply(e.Terms)
	warns = append(warns, pw...)
	out := e
	out.Formula = "calibrated-" + e.Formula
	out.Terms = peakTerms
	out.Notes = append(slices.Clone(e.Notes), fmt.Sprintf("coefficients calibrated on %d runs (%s, %s truth%s)", fr.Runs, c.GPU, c.Truth, modeNote(c.Terms)))
	var err error
	if out.Steady, out.Peak, err = out.Totals(); err != nil {
		return e, warns, fmt.Errorf("apply calibration: %w", err)
	}
	if c.Steady != nil {
		st := Estimate{Terms: nil}
		st.Terms, _ = c.Steady.apply(e.Terms)
		if out.Steady, _, err = st.Totals(); err != nil {
			return e, warns, fmt.Errorf("apply calibration, steady fit: %w", err)
		}
		out.Peak = max(out.Peak, out.Steady)
		out.Notes = append(out.Notes, "steady state from the coefficients fitted to the measured steady state")
	}
	return out, warns, nil
}

func modeNote(mode string) string {
	if mode == FitPerCategory {
		return ", one factor per term category"
	}
	return ""
}

// apply returns the terms with this fit's coefficients and the constant.
func (f *CalibratedFit) apply(terms []Term) ([]Term, []string) {
	var warns []string
	out := make([]Term, 0, len(terms)+1)
	byName := map[string]int{}
	for i, t := range terms {
		byName[t.Name] = i
	}
	coef := make([]float64, len(terms))
	for i, t := range terms {
		coef[i] = t.Coef
	}
	for _, co := range f.Coefficients {
		if f.Terms == FitPerCategory {
			break
		}
		members := co.Members
		if len(members) == 0 {
			members = []string{co.Term}
		}
		switch {
		case co.Original > 0:
			factor := co.Value / co.Original
			for _, m := range members {
				if i, ok := byName[m]; ok {
					coef[i] *= factor
				}
			}
		case co.Scale:
			for _, m := range members {
				if i, ok := byName[m]; ok {
					coef[i] *= co.Value
				}
			}
		default:
			// The formula's coefficient was zero: the value belongs to the
			// first member, in its units.
			if i, ok := byName[members[0]]; ok {
				coef[i] = co.Value
			}
		}
	}
	inConstant := map[string]bool{}
	for _, n := range f.ConstantTerms {
		inConstant[n] = true
	}
	if f.Terms == FitPerCategory {
		factor := map[string]float64{}
		for _, co := range f.Coefficients {
			factor[co.Term] = co.Value
		}
		for i, t := range terms {
			if x, ok := factor[TermCategory(t)]; ok {
				coef[i] = t.Coef * x
			}
		}
	}
	for _, n := range f.Dropped {
		if i, ok := byName[n]; ok && terms[i].Feature != 0 {
			warns = append(warns, fmt.Sprintf("term %q was zero in every fitted run: it keeps the formula's coefficient", n))
		}
	}
	for i, t := range terms {
		if inConstant[t.Name] {
			continue
		}
		t.Coef = coef[i]
		t.Bytes = ceilBytes(t.Coef * t.Feature)
		out = append(out, t)
	}
	out = append(out, Term{
		Name: CalibratedTerm, Group: GroupOverhead, Feature: 1, Unit: "1",
		Coef: float64(f.Constant), Bytes: f.Constant,
		Note: "fitted: CUDA context, workspaces, allocator cache and constant terms",
	})
	return out, warns
}

func ceilBytes(v float64) uint64 {
	if v <= 0 || math.IsNaN(v) {
		return 0
	}
	if v >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(math.Ceil(v))
}
