package analytic

import "github.com/memval/memval/analytic/alloc"

// generation plays a generation (memory_generation.go): the whole-run
// terms, then the prefill's terms, freed, then the decode's terms, each
// term one block.
func (p *player) generation(e *Estimate) {
	p.phase, p.step = PhasePrefill, 1
	for i := range e.Terms {
		t := &e.Terms[i]
		if t.Phase == "" && t.Name != "weights" && t.Name != contextTermName && t.Bytes > 0 {
			p.malloc(t.Bytes)
		}
	}
	var prefill []alloc.BlockID
	for i := range e.Terms {
		if t := &e.Terms[i]; t.Phase == PhasePrefill && t.Bytes > 0 {
			prefill = append(prefill, p.malloc(t.Bytes))
		}
	}
	for _, id := range prefill {
		p.free(id)
	}
	p.phase = PhaseDecode
	for i := range e.Terms {
		if t := &e.Terms[i]; t.Phase == PhaseDecode && t.Bytes > 0 {
			p.malloc(t.Bytes)
		}
	}
}
