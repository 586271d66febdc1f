package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/estimate"
)

const plotGiB = float64(1 << 30)

// plotStep draws the first estimate's played step into path (.svg or
// .png, by its extension): allocated and reserved after every event of
// setup and the two steps, the device peak (reserved + context and
// non-torch memory), the GPU's capacity when there is one, and a label at
// the start of each phase.
func plotStep(path string, rep *estimate.Report) error {
	var e *analytic.Estimate
	for i := range rep.Estimates {
		if d := rep.Estimates[i].Device; d != nil && len(d.Timeline) > 0 {
			e = &rep.Estimates[i]
			break
		}
	}
	if e == nil {
		return usagef("--plot: no estimate has a played step (only the breakdown formula plays one); use --formula breakdown or all")
	}
	d := e.Device
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s %s: one step through the caching allocator", rep.Model.Name, e.Formula)
	p.X.Label.Text = "allocator event (load, then two steps)"
	p.Y.Label.Text = "GiB"
	alloc := make(plotter.XYs, len(d.Timeline))
	res := make(plotter.XYs, len(d.Timeline))
	var labels plotter.XYLabels
	last := ""
	var peakAt int
	for i, pt := range d.Timeline {
		alloc[i] = plotter.XY{X: float64(i), Y: float64(pt.Allocated) / plotGiB}
		res[i] = plotter.XY{X: float64(i), Y: float64(pt.Reserved) / plotGiB}
		if pt.Reserved > d.Timeline[peakAt].Reserved {
			peakAt = i
		}
		if key := fmt.Sprint(pt.Phase, pt.Step); key != last {
			last = key
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: 0})
			name := pt.Phase
			if pt.Step > 0 {
				name = fmt.Sprintf("%s %d", pt.Phase, pt.Step)
			}
			labels.Labels = append(labels.Labels, name)
		}
	}
	la, err := plotter.NewLine(alloc)
	if err != nil {
		return err
	}
	la.Color = color.RGBA{B: 200, A: 255}
	lr, err := plotter.NewLine(res)
	if err != nil {
		return err
	}
	lr.Color = color.RGBA{R: 200, A: 255}
	p.Add(plotter.NewGrid(), la, lr)
	p.Legend.Add("allocated (max_memory_allocated)", la)
	p.Legend.Add("reserved (max_memory_reserved)", lr)
	n := float64(len(d.Timeline))
	hline := func(y float64, c color.Color, dash bool, name string) error {
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: y}, {X: n, Y: y}})
		if err != nil {
			return err
		}
		l.Color = c
		if dash {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	dp := float64(d.DevicePeak) / plotGiB
	if err := hline(dp, color.RGBA{R: 120, G: 60, B: 160, A: 255}, true, fmt.Sprintf("device peak %.2f GiB (+ context, non-torch)", dp)); err != nil {
		return err
	}
	if rep.GPU != nil {
		c := float64(rep.GPU.TotalBytes) / plotGiB
		if err := hline(c, color.Black, false, fmt.Sprintf("%s capacity %.1f GiB", rep.GPU.Name, c)); err != nil {
			return err
		}
	}
	pk, err := plotter.NewScatter(plotter.XYs{res[peakAt]})
	if err != nil {
		return err
	}
	pk.Color = color.RGBA{R: 200, A: 255}
	p.Add(pk)
	p.Legend.Add(fmt.Sprintf("reserved peak %.2f GiB (%s)", res[peakAt].Y, d.Timeline[peakAt].Phase), pk)
	lb, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	p.Add(lb)
	p.Legend.Top = true
	if err := p.Save(9*vg.Inch, 5.5*vg.Inch, path); err != nil {
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	return nil
}
