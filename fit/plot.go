package fit

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/memval/memval/profiler"
)

// TraceFile is the name of the trace beside a run's result.json.
const TraceFile = "trace.csv"

// Chart is a chart written by WriteCharts: its base name (the files are
// Name.png and Name.svg) and a caption.
type Chart struct {
	Name    string
	Caption string
}

const gib = float64(1 << 30)

// chart sizes
const (
	chartWidth  = 9 * vg.Inch
	chartHeight = 5.5 * vg.Inch
)

// WriteCharts draws the report's charts into dir as PNG and SVG and
// returns them. A chart that has nothing to show (no trace beside any run)
// is left out and named in the returned notes.
func (an *Analysis) WriteCharts(dir string) ([]Chart, []string, error) {
	var charts []Chart
	var notes []string
	p, caption, err := an.timelinePlot()
	switch {
	case errors.Is(err, errNoTrace):
		notes = append(notes, "no run has a trace.csv beside its result.json: no timeline chart")
	case err != nil:
		return nil, nil, err
	default:
		if err := save(p, dir, "timeline"); err != nil {
			return nil, nil, err
		}
		charts = append(charts, Chart{Name: "timeline", Caption: caption})
	}
	for _, q := range []Quantity{Peak, Steady} {
		p, err := an.predictedPlot(q)
		if err != nil {
			return nil, nil, err
		}
		name := "predicted-vs-measured-" + string(q)
		if err := save(p, dir, name); err != nil {
			return nil, nil, err
		}
		charts = append(charts, Chart{Name: name, Caption: fmt.Sprintf("Predicted against measured %s memory (%s truth), every formula; on the dashed line the prediction is exact.", q, an.Options.Truth)})
	}
	p, err = an.residualPlot()
	if err != nil {
		return nil, nil, err
	}
	if err := save(p, dir, "residuals-vs-tokens"); err != nil {
		return nil, nil, err
	}
	charts = append(charts, Chart{Name: "residuals-vs-tokens", Caption: "Relative error of the peak prediction against tokens per micro-batch (B*S); above zero the formula predicts too much."})
	return charts, notes, nil
}

func save(p *plot.Plot, dir, name string) error {
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		if _, ok := ax.Tick.Marker.(plot.DefaultTicks); ok {
			ax.Tick.Marker = niceTicks{}
		}
	}
	for _, ext := range []string{".png", ".svg"} {
		path := filepath.Join(dir, name+ext)
		if err := p.Save(chartWidth, chartHeight, path); err != nil {
			return fmt.Errorf("save chart %s: %w", path, err)
		}
	}
	return nil
}

var errNoTrace = errors.New("no trace")

// timelineRun picks the run whose timeline is drawn: the one with the
// highest measured device peak among those with a trace.csv.
func (an *Analysis) timelineRun() (int, *profiler.Trace, error) {
	best, bestPeak := -1, uint64(0)
	for i, r := range an.Runs {
		if _, err := os.Stat(filepath.Join(filepath.Dir(r.Path), TraceFile)); err != nil {
			continue
		}
		if pk := r.Result.Summary.PeakDeviceBytes; best < 0 || pk > bestPeak {
			best, bestPeak = i, pk
		}
	}
	if best < 0 {
		return -1, nil, errNoTrace
	}
	path := filepath.Join(filepath.Dir(an.Runs[best].Path), TraceFile)
	tr, err := profiler.ReadTraceFile(path)
	if err != nil {
		return -1, nil, fmt.Errorf("timeline chart: %w", err)
	}
	return best, tr, nil
}

func (an *Analysis) timelinePlot() (*plot.Plot, string, error) {
	ri, tr, err := an.timelineRun()
	if err != nil {
		return nil, "", err
	}
	r := an.Runs[ri]
	gpu := r.Result.Summary.GPU
	var pts plotter.XYs
	var t0 int64
	for _, s := range tr.Samples {
		if s.Gap() || s.GPU != gpu {
			continue
		}
		if len(pts) == 0 {
			t0 = s.TNS
		}
		pts = append(pts, plotter.XY{X: float64(s.TNS-t0) / 1e9, Y: float64(s.Used) / gib})
	}
	if len(pts) == 0 {
		return nil, "", fmt.Errorf("timeline chart: %s has no readings for GPU %d", r.Path, gpu)
	}
	p := plot.New()
	p.Title.Text = "Device memory of run " + r.Name()
	p.X.Label.Text = "time since first sample (s)"
	p.Y.Label.Text = "device used (GiB)"
	line, err := plotter.NewLine(pts)
	if err != nil {
		return nil, "", fmt.Errorf("timeline chart: %w", err)
	}
	line.Color = color.Black
	line.Width = vg.Points(1.5)
	p.Add(line, plotter.NewGrid())
	p.Legend.Add("measured (NVML used)", line)
	xmax := pts[len(pts)-1].X
	ymax := 0.0
	for _, pt := range pts {
		ymax = math.Max(ymax, pt.Y)
	}
	var labels plotter.XYLabels
	for i, f := range an.Formulas {
		e := r.Prediction(f.Formula)
		if e == nil {
			continue
		}
		for _, q := range []struct {
			name  string
			bytes uint64
			dash  []vg.Length
		}{{"peak", e.Peak, nil}, {"steady", e.Steady, []vg.Length{vg.Points(6), vg.Points(3)}}} {
			y := float64(q.bytes) / gib
			hl, err := plotter.NewLine(plotter.XYs{{X: 0, Y: y}, {X: xmax, Y: y}})
			if err != nil {
				return nil, "", fmt.Errorf("timeline chart: %w", err)
			}
			hl.Color = formulaColor(i)
			hl.Width = vg.Points(1.2)
			hl.Dashes = q.dash
			p.Add(hl)
			p.Legend.Add(fmt.Sprintf("%s %s %.2f GiB", f.Formula, q.name, y), hl)
			labels.XYs = append(labels.XYs, plotter.XY{X: xmax, Y: y})
			labels.Labels = append(labels.Labels, fmt.Sprintf("%s %s", f.Formula, q.name))
			ymax = math.Max(ymax, y)
		}
	}
	labels = spreadLabels(labels, 0.035*ymax*1.08)
	if len(labels.XYs) > 0 {
		lb, err := plotter.NewLabels(labels)
		if err != nil {
			return nil, "", fmt.Errorf("timeline chart: %w", err)
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].XAlign = draw.XRight
			lb.TextStyle[i].YAlign = draw.YBottom
		}
		p.Add(lb)
	}
	p.Y.Min = 0
	p.Y.Max = ymax * 1.08
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	caption := fmt.Sprintf("Device memory over time of run %s (the run with the highest peak), with each formula's peak (solid) and steady (dashed) prediction.", r.Name())
	return p, caption, nil
}

func (an *Analysis) predictedPlot(q Quantity) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Predicted against measured %s memory", q)
	p.X.Label.Text = fmt.Sprintf("measured %s, %s truth (GiB)", q, an.Options.Truth)
	p.Y.Label.Text = fmt.Sprintf("predicted %s (GiB)", q)
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), 0.0
	for i, f := range an.Formulas {
		qa := f.Peak
		if q == Steady {
			qa = f.Steady
		}
		if len(qa.Points) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(qa.Points))
		for k, pt := range qa.Points {
			pts[k] = plotter.XY{X: float64(pt.Measured) / gib, Y: float64(pt.Predicted) / gib}
			lo = math.Min(lo, math.Min(pts[k].X, pts[k].Y))
			hi = math.Max(hi, math.Max(pts[k].X, pts[k].Y))
		}
		if err := addFormulaPoints(p, pts, i, f.Formula); err != nil {
			return nil, fmt.Errorf("predicted chart: %w", err)
		}
	}
	if hi == 0 {
		lo, hi = 0, 1
	}
	lo = 0
	diag, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi * 1.05, Y: hi * 1.05}})
	if err != nil {
		return nil, fmt.Errorf("predicted chart: %w", err)
	}
	diag.Color = color.Gray{Y: 90}
	diag.Dashes = []vg.Length{vg.Points(5), vg.Points(4)}
	p.Add(diag)
	p.Legend.Add("y = x", diag)
	p.X.Min, p.Y.Min = lo, lo
	p.X.Max, p.Y.Max = hi*1.05, hi*1.05
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

func (an *Analysis) residualPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Peak error against tokens per micro-batch"
	p.X.Label.Text = "tokens per micro-batch, B*S (log scale)"
	p.Y.Label.Text = "(predicted - measured) / measured (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	xmin, xmax := math.Inf(1), 0.0
	ymin, ymax := 0.0, 0.0
	for i, f := range an.Formulas {
		var pts plotter.XYs
		for _, pt := range f.Peak.Points {
			tok := an.Runs[pt.Run].Tokens()
			if tok <= 0 {
				continue
			}
			pts = append(pts, plotter.XY{X: float64(tok), Y: 100 * pt.Rel})
			xmin, xmax = math.Min(xmin, float64(tok)), math.Max(xmax, float64(tok))
			ymin, ymax = math.Min(ymin, 100*pt.Rel), math.Max(ymax, 100*pt.Rel)
		}
		if len(pts) == 0 {
			continue
		}
		if err := addFormulaPoints(p, pts, i, f.Formula); err != nil {
			return nil, fmt.Errorf("residual chart: %w", err)
		}
	}
	if xmax == 0 {
		xmin, xmax = 1, 10
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: xmin / 1.5, Y: 0}, {X: xmax * 1.5, Y: 0}})
	if err != nil {
		return nil, fmt.Errorf("residual chart: %w", err)
	}
	zero.Color = color.Gray{Y: 90}
	zero.Dashes = []vg.Length{vg.Points(5), vg.Points(4)}
	p.Add(zero)
	p.X.Min, p.X.Max = xmin/1.5, xmax*1.5
	pad := math.Max(0.12*(ymax-ymin), 1)
	p.Y.Min, p.Y.Max = ymin-pad, ymax+pad
	p.Legend.Top = true
	return p, nil
}

// palette is Tableau 10: distinct colours for up to ten formulas.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

func formulaColor(i int) color.Color { return palette[i%len(palette)] }

// spreadLabels keeps, from bottom to top, only the labels at least gap
// above the last one kept, so that text never overlaps; the legend still
// names every line.
func spreadLabels(l plotter.XYLabels, gap float64) plotter.XYLabels {
	idx := make([]int, len(l.XYs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return l.XYs[idx[a]].Y < l.XYs[idx[b]].Y })
	var out plotter.XYLabels
	last := math.Inf(-1)
	for _, i := range idx {
		if l.XYs[i].Y-last < gap {
			continue
		}
		last = l.XYs[i].Y
		out.XYs = append(out.XYs, l.XYs[i])
		out.Labels = append(out.Labels, l.Labels[i])
	}
	return out
}

// niceTicks labels every major tick of a linear axis, at about six steps of
// 1, 2 or 5 times a power of ten (gonum's default labels only a few, which
// left charts with two numbers on an axis).
type niceTicks struct{}

// Ticks returns the ticks between lo and hi.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	prec := max(0, -int(math.Floor(math.Log10(step))))
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', prec, 64)})
		for k := 1; k < 5; k++ { // minor ticks
			if m := v + float64(k)*step/5; m <= hi {
				ticks = append(ticks, plot.Tick{Value: m})
			}
		}
	}
	return ticks
}

// addFormulaPoints draws formula i's points in its colour and glyph and
// names them in the legend.
func addFormulaPoints(p *plot.Plot, pts plotter.XYs, i int, formula string) error {
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Color = formulaColor(i)
	sc.GlyphStyle.Shape = plotutil.Shape(i)
	sc.GlyphStyle.Radius = vg.Points(3.5)
	p.Add(sc)
	p.Legend.Add(formula, sc)
	return nil
}
