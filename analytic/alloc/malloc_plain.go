package alloc

// mallocPlain is MallocStream on the default stream (Malloc). For an
// allocator whose configuration has neither roundup_power2_divisions,
// garbage collection nor expandable segments (plain), a request that a
// cached block serves is met here, with fewer live values than
// MallocStream keeps for its other cases; any other request goes to
// MallocStream. Both must decide alike: the differential tests play
// either against the reference.
func (a *Allocator) mallocPlain(size uint64) (BlockID, error) {
	if !a.plain {
		return a.MallocStream(size, 0)
	}
	rounded := (size + MinBlockSize - 1) &^ (MinBlockSize - 1)
	small := rounded <= SmallSize
	p := 1
	if small {
		p = 0
	}
	pl := &a.pools[p]
	free := pl.free
	if size == 0 || len(free) == 0 || free[len(free)-1].size < rounded {
		return a.MallocStream(size, 0)
	}
	i := pl.hint
	if uint(i) >= uint(len(free)) || free[i].size < rounded || i > 0 && free[i-1].size >= rounded {
		i = searchSize(free, rounded)
	}
	fs, ms := free[i].size, a.maxSplit
	if rounded < ms && fs >= ms || rounded >= ms && fs >= rounded+a.maxNonSplit {
		return a.MallocStream(size, 0)
	}
	b := free[i].tail
	hole := a.unlink(pl, i, b)
	bl := a.blocks
	blk := &bl[b]
	rest := fs - rounded
	var split bool
	if small {
		split = rest >= MinBlockSize
	} else {
		split = rounded < ms && rest > SmallSize
	}
	if split {
		var r int32
		var gen uint32
		if n := len(a.spare); n > 0 {
			r = a.spare[n-1]
			a.spare = a.spare[:n-1]
			gen = bl[r].gen + 1
		} else {
			a.blocks = append(bl, block{})
			bl = a.blocks
			r = int32(len(bl) - 1)
			blk = &bl[b]
		}
		rb := &bl[r]
		next := blk.next
		rb.size, rb.offset, rb.seg, rb.prev, rb.next, rb.gen = rest, blk.offset+rounded, blk.seg, b, next, gen
		rb.gcBase, rb.up, rb.down, rb.pool, rb.free, rb.unmapped = 0, none, none, blk.pool, true, false
		if next != none {
			bl[next].prev = r
		}
		blk.next = r
		blk.size = rounded
		if s := pl.free; hole >= 0 && (hole == 0 || s[hole-1].size < rest) {
			s[hole] = bucket{rest, r, r}
			if !small {
				rb.gcBase = a.largeSearches
			}
			pl.hint = hole
		} else {
			a.cacheAt(pl, r, hole)
		}
	} else {
		pl.closeHole(hole)
	}
	blk.free = false
	blk.gen++
	a.allocated += blk.size
	a.maxAllocated = max(a.maxAllocated, a.allocated)
	return BlockID(uint64(blk.gen)<<32 | uint64(b+1)), nil
}
