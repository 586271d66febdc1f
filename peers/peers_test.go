package peers

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler/schema"
	"github.com/memval/memval/scenarios"
	"github.com/memval/memval/scenarios/torchtest"
)

func TestParseResults(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		n             int
	}{
		{"ok", `[{"case":"a","peer":"p","quantities":{"peak":10},"ns_per_estimate":5}]`, "", 1},
		{"cannot", `[{"case":"a","peer":"p","cannot":"no activations"}]`, "", 1},
		{"empty list", `[]`, "", 0},
		{"not a list", `{}`, "peers results", 0},
		{"no case", `[{"peer":"p","cannot":"x"}]`, "case and peer must be set", 0},
		{"nothing", `[{"case":"a","peer":"p"}]`, "no quantities, cannot or error", 0},
		{"negative", `[{"case":"a","peer":"p","quantities":{"peak":-1}}]`, "quantity peak", 0},
		{"bad ns", `[{"case":"a","peer":"p","cannot":"x","ns_per_estimate":-3}]`, "ns_per_estimate", 0},
	} {
		rs, err := ParseResults([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(rs) != tc.n {
			t.Errorf("%s: %d results, %v; want %d", tc.name, len(rs), err, tc.n)
		}
	}
}

func FuzzParseResults(f *testing.F) {
	f.Add([]byte(`[{"case":"a","peer":"p","quantities":{"peak":10},"ns_per_estimate":5}]`))
	f.Add([]byte(`[{"case":"a","peer":"p","cannot":"x"}]`))
	f.Add([]byte(`[{"case":"a","peer":"p","error":"boom\nline"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseResults(data)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Case == "" || r.Peer == "" {
				t.Fatalf("accepted %+v without case or peer", r)
			}
			for k, v := range r.Quantities {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("accepted quantity %s = %v", k, v)
				}
			}
		}
	})
}

// TestCompare scores made-up results: errors per column, a peer that
// cannot express a quantity is counted as such (never scored), and the
// published columns keep their bases apart.
func TestCompare(t *testing.T) {
	cases := []Case{
		{Name: "t1", Set: SetTruth, Measured: Quantities{Weights: 100, Gradients: 100, Optimizer: 200, Activations: 100},
			Memval: Quantities{Weights: 100, Gradients: 100, Optimizer: 200, Activations: 110}},
		{Name: "p1", Set: SetPublished, Basis: schema.BasisAllocated, Measured: Quantities{Peak: 1000}, Memval: Quantities{Peak: 1100}},
		{Name: "p2", Set: SetPublished, Basis: schema.BasisNotStated, Measured: Quantities{Peak: 1000}, Memval: Quantities{Peak: 900}},
	}
	for i := range cases {
		complete(cases[i].Measured)
		complete(cases[i].Memval)
	}
	rs := []Result{
		{Case: "t1", Peer: "states-only", Quantities: Quantities{ModelStates: 600}, NsPer: 1000},
		{Case: "p1", Peer: "states-only", Cannot: "no peak"},
		{Case: "p2", Peer: "states-only", Error: "boom\nmore"},
		{Case: "other", Peer: "states-only", Cannot: "not a case here"},
	}
	rep := Compare(cases, rs, map[string]float64{SetTruth: 10, SetPublished: 20})
	if len(rep.Rows) != 2 || rep.Rows[0].Name != Memval || rep.Rows[1].Name != "states-only" {
		t.Fatalf("rows %+v", rep.Rows)
	}
	mv, peer := rep.Rows[0], rep.Rows[1]
	for _, tc := range []struct {
		row  Row
		col  int
		n    int
		med  float64
		cant int
		errs int
	}{
		{mv, 0, 1, 0, 0, 0},     // model states 400 = 400
		{mv, 1, 1, 0.1, 0, 0},   // activations 110 vs 100
		{mv, 2, 1, 0.02, 0, 0},  // sum 510 vs 500
		{mv, 3, 1, 0.1, 0, 0},   // allocated 1100 vs 1000
		{mv, 4, 1, 0.1, 0, 0},   // not stated 900 vs 1000
		{peer, 0, 1, 0.5, 0, 0}, // 600 vs 400
		{peer, 1, 0, 0, 1, 0},   // no activations figure
		{peer, 2, 0, 0, 1, 0},   // no sum
		{peer, 3, 0, 0, 1, 0},   // cannot
		{peer, 4, 0, 0, 0, 1},   // error
	} {
		c := tc.row.Cells[tc.col]
		if c.Stats.N != tc.n || math.Abs(c.Stats.MedianAPE-tc.med) > 1e-9 || c.Cannot != tc.cant || c.Errors != tc.errs {
			t.Errorf("%s column %d: %+v, want n %d median %g cannot %d errors %d", tc.row.Name, tc.col, c, tc.n, tc.med, tc.cant, tc.errs)
		}
	}
	if peer.Ns[SetTruth] != 1000 || mv.Ns[SetPublished] != 20 {
		t.Errorf("times: peer %v memval %v", peer.Ns, mv.Ns)
	}
	var b bytes.Buffer
	rep.Markdown(&b)
	for _, want := range []string{"| memval |", "| states-only |", "50.0 % / 50.0 % (1)", "no peak (1)", "failed: boom (1)", "1.0 µs"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestPublishedCases: the corpus' evaluated measurements come with
// memval's figure on their basis and a config folder where one exists.
func TestPublishedCases(t *testing.T) {
	cs, err := PublishedCases(filepath.Join("..", "scenarios", "published"), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) < 10 {
		t.Fatalf("%d published cases, want the ones fit evaluates (14 when written)", len(cs))
	}
	for _, c := range cs {
		if c.Measured[Peak] <= 0 || c.Memval[Peak] <= 0 || c.Basis == "" {
			t.Errorf("%s: measured %v memval %v basis %q", c.Name, c.Measured, c.Memval, c.Basis)
		}
		if c.ConfigDir != "" {
			if _, err := os.Stat(filepath.Join(c.ConfigDir, "config.json")); err != nil {
				t.Errorf("%s: %v", c.Name, err)
			}
		}
	}
	if _, err := PublishedCases(t.TempDir(), t.TempDir(), nil); err == nil {
		t.Error("an empty corpus: no error")
	}
}

// needPeers gates the test that runs the peers: torchtest's gate, and the
// peers of scenarios/requirements-peers.txt importable (make peers-env).
func needPeers(t *testing.T) string {
	t.Helper()
	py := scenarios.Python()
	torchtest.Need(t, py)
	cmd := exec.Command(py, "-c", "import llm_analysis.analysis, deepspeed.runtime.zero.stage3, accelerate.commands.estimate")
	cmd.Env = append(os.Environ(), "DS_ACCELERATOR=cpu")
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := "the peers (make peers-env: scenarios/requirements-peers.txt) are not importable with MEMVAL_PYTHON=" + py + ": " + lastLine(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		if path := os.Getenv(torchtest.SkipLogEnv); path != "" {
			if f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); ferr == nil {
				f.WriteString(t.Name() + "\n")
				f.Close()
			}
		}
		t.Skip(msg)
	}
	return py
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestPeersSmall is `make peers` on the CI set: four CPU-truth cases and
// one published measurement, every peer. Each peer answers every case
// (figures, or what it cannot express); none fails; memval's model states
// equal the truth within 0.1 %.
func TestPeersSmall(t *testing.T) {
	py := needPeers(t)
	rep, err := Run(Options{Out: t.TempDir(), Published: filepath.Join("..", "scenarios", "published"),
		Only: []string{"litgpt/full-tinyllama-1.1b-1xa10g"}, Small: true, Python: py,
		Script: filepath.Join("..", "scripts", "peers", "peers.py"), MinTime: 0.01})
	if errors.Is(err, ErrNoPeers) || err != nil {
		t.Fatal(err)
	}
	if len(rep.Cases) != 5 {
		t.Fatalf("%d cases, want 4 truth + 1 published", len(rep.Cases))
	}
	names := map[string]bool{}
	for _, r := range rep.Rows {
		names[r.Name] = true
		if len(r.Errs) > 0 {
			t.Errorf("%s failed: %v", r.Name, r.Errs)
		}
	}
	for _, p := range []string{Memval, "llm-analysis", "accelerate", "deepspeed", "memtracker", "eleuther"} {
		if !names[p] {
			t.Errorf("no row for %s", p)
		}
	}
	for _, p := range rep.Points {
		if p.Estimator == Memval && p.Quantity == ModelStates && math.Abs(p.Rel) > 0.001 {
			t.Errorf("%s: memval's model states %.0f, truth %.0f (%+.3f %%)", p.Case, p.Predicted, p.Measured, 100*p.Rel)
		}
	}
	var b bytes.Buffer
	rep.Markdown(&b)
	t.Log("\n" + b.String())
}

// BenchmarkMemvalPublished is memval's time per published estimate (the
// breakdown with its device-level peaks, as MemvalNs times it), the figure
// the peers table shows.
func BenchmarkMemvalPublished(b *testing.B) {
	cs, err := PublishedCases(filepath.Join("..", "scenarios", "published"), b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := cs[i%len(cs)]
		var e analytic.Estimate
		if err := analytic.PredictDevice(&e, "breakdown", c.Arch, c.Workload, analytic.DeviceOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemvalTruth is memval's time per CPU-truth estimate (MemvalTruth:
// the breakdown and its saved-activation terms).
func BenchmarkMemvalTruth(b *testing.B) {
	specs := TruthSpecs(false)
	ws := make([]model.Workload, len(specs))
	for i, s := range specs {
		if err := specs[i].Arch.Normalize(); err != nil {
			b.Fatal(err)
		}
		w, err := s.Workload.WithDefaults()
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(specs)
		if _, _, err := MemvalTruth(specs[k].Arch, ws[k]); err != nil {
			b.Fatal(err)
		}
	}
}
