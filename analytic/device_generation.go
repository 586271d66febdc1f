package analytic

import "github.com/memval/memval/analytic/alloc"

// generation plays a generation (memory_generation.go): the whole-run
// terms, then the prefill's terms, then the decode's. A cache term is
// 2L blocks (each layer's K and V, as the caches keep them). The
// prefill's terms are freed before the decode's are allocated; the
// allocator's cached segments are released in between (see below), so
// the reserved peak is the prefill's or the decode's, not the prompt
// cache's segments kept beside the grown cache.
func (p *player) generation(e *Estimate, layers int) {
	p.phase, p.step = PhasePrefill, 1
	n := 2 * max(layers, 1)
	for i := range e.Terms {
		t := &e.Terms[i]
		if t.Phase == "" && t.Name != "weights" && t.Name != contextTermName && t.Bytes > 0 {
			p.blocks(t, n, nil)
		}
	}
	var cache, rest []alloc.BlockID
	for i := range e.Terms {
		if t := &e.Terms[i]; t.Phase == PhasePrefill && t.Bytes > 0 {
			if t.Group == GroupKVCache {
				cache = p.blocks(t, n, cache)
			} else {
				rest = append(rest, p.malloc(t.Bytes))
			}
		}
	}
	for _, id := range rest {
		p.free(id)
	}
	p.phase = PhaseDecode
	// The cache grows a token at a time over the decode: the allocator
	// reuses the smaller cached segments while a token's growth fits the
	// rounding, and releases them when a cudaMalloc fails
	// (release_cached_blocks), so the prompt's segments are not kept
	// reserved beside the grown cache where memory is short. Played as
	// the prompt's cache freed and released, then the grown one.
	for _, id := range cache {
		p.free(id)
	}
	p.a.EmptyCache()
	for i := range e.Terms {
		if t := &e.Terms[i]; t.Phase == PhaseDecode && t.Bytes > 0 {
			p.blocks(t, n, nil)
		}
	}
}

// blocks allocates t's bytes as a cache does (n blocks of a layer's K or
// V when t is a cache term, else one), appending the ids to ids.
func (p *player) blocks(t *Term, n int, ids []alloc.BlockID) []alloc.BlockID {
	if t.Group != GroupKVCache {
		return append(ids, p.malloc(t.Bytes))
	}
	each := t.Bytes / uint64(n)
	for j := 0; j < n; j++ {
		ids = append(ids, p.malloc(each))
	}
	return ids
}
