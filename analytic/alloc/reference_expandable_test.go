package alloc

// The reference's expandable segments: expandable.go's functions on
// refAllocator, for the differential tests.

func (a *refAllocator) pageOf(p int32) uint64 {
	if a.pools[p].small {
		return SmallBuffer
	}
	return LargeBuffer
}

// growable is get_free_block's expandable_size: a free block's size and
// that of the unmapped range after it, which it can grow into (the
// segment's unmapped end counts as unlimited).
func (a *refAllocator) growable(b int32) uint64 {
	blk := &a.blocks[b]
	if !a.segments[blk.seg].expandable {
		return blk.size
	}
	if blk.next == none {
		return unlimited
	}
	if n := &a.blocks[blk.next]; n.unmapped {
		return blk.size + n.size
	}
	return blk.size
}

// roomFrom reports whether the free and unmapped blocks from c on hold
// need bytes (has_available_address_space; the unmapped end holds any).
func (a *refAllocator) roomFrom(c int32, need uint64) bool {
	var have uint64
	for x := c; have < need; x = a.blocks[x].next {
		if x == none {
			return true
		}
		if blk := &a.blocks[x]; blk.free || blk.unmapped {
			have += blk.size
		} else {
			return false
		}
	}
	return true
}

// findExpandable is find_expandable_block for segment s: the lowest
// unmapped range (or the free block just before it) from which free and
// unmapped blocks hold need bytes; else the free block before the
// unmapped end, or none for the end itself.
func (a *refAllocator) findExpandable(s int32, need uint64) int32 {
	last := int32(none)
	for b := a.segments[s].first; b != none; b = a.blocks[b].next {
		last = b
		if !a.blocks[b].unmapped {
			continue
		}
		c := b
		if pr := a.blocks[b].prev; pr != none && a.blocks[pr].free {
			c = pr
		}
		if a.roomFrom(c, need) {
			return c
		}
	}
	if last != none && a.blocks[last].free {
		return last
	}
	return none
}

// expand is try_allocate_expandable_block: from the range findExpandable
// picks, map pages (map_block: the request's bytes still missing, rounded
// up to whole pages, at most the unmapped range) and merge them with the
// free blocks around them until one free block holds the request. It
// returns that block, not cached, or none when the capacity does not
// allow a mapping (pages mapped before that stay mapped, as in PyTorch).
func (a *refAllocator) expand(p int32, rounded uint64) int32 {
	page := a.pageOf(p)
	s := a.pools[p].expSeg
	c := int32(none)
	if s != none && !a.segments[s].released {
		c = a.findExpandable(s, rounded)
	}
	w := int32(none) // the free block that grows, once taken out of the cache
	cached := false
	u := c // the unmapped range to map next; none: the unmapped end
	if c != none && !a.blocks[c].unmapped {
		w, cached, u = c, true, a.blocks[c].next
	}
	for w == none || a.blocks[w].size < rounded {
		want := rounded
		if w != none {
			want -= a.blocks[w].size
		}
		avail := unlimited
		if u != none {
			avail = a.blocks[u].size
		}
		bytes := min((want+page-1)/page*page, avail)
		if !a.room(bytes) {
			if w != none && !cached {
				a.cache(p, w) // map_block had cached it
			}
			return none
		}
		if s == none {
			s = a.newSegment(p, 0, true)
			a.pools[p].expSeg = s
		}
		seg := &a.segments[s]
		if seg.released {
			seg.released = false
			a.nSegs++
		}
		seg.size += bytes
		a.grow(bytes)
		if cached {
			a.uncache(p, w)
			cached = false
		}
		if u == none {
			// Pages at the end: the free block before it grows, or a new one.
			if w != none {
				a.blocks[w].size += bytes
			} else {
				w = a.newBlock(s, seg.end, bytes)
				a.linkAfter(s, a.lastBlock(s), w)
			}
			seg.end += bytes
			continue
		}
		if ub := &a.blocks[u]; bytes < ub.size {
			r := a.newBlock(s, ub.offset+bytes, ub.size-bytes)
			a.blocks[r].free, a.blocks[r].unmapped = false, true
			a.blocks[u].size = bytes
			a.linkAfter(s, u, r)
		}
		a.blocks[u].unmapped, a.blocks[u].free = false, true
		if w != none { // w is just before u
			a.blocks[w].size += a.blocks[u].size
			a.unlinkBlock(s, u)
		} else {
			w = u
		}
		if n := a.blocks[w].next; n != none && a.blocks[n].free {
			a.uncache(p, n)
			a.blocks[w].size += a.blocks[n].size
			a.unlinkBlock(s, n)
		}
		u = a.blocks[w].next // unmapped, if the request needs more
	}
	return w
}

// linkAfter puts block b into segment s after block x (first when x is
// none).
func (a *refAllocator) linkAfter(s, x, b int32) {
	bb := &a.blocks[b]
	if x == none {
		bb.prev, bb.next = none, a.segments[s].first
		a.segments[s].first = b
	} else {
		bb.prev, bb.next = x, a.blocks[x].next
		a.blocks[x].next = b
	}
	if bb.next != none {
		a.blocks[bb.next].prev = b
	}
}

// unlinkBlock takes block b out of segment s and drops it.
func (a *refAllocator) unlinkBlock(s, b int32) {
	bb := &a.blocks[b]
	if bb.prev != none {
		a.blocks[bb.prev].next = bb.next
	} else {
		a.segments[s].first = bb.next
	}
	if bb.next != none {
		a.blocks[bb.next].prev = bb.prev
	}
	a.dropBlock(b)
}

// unmapFree is release_blocks for expandable segment s: every page wholly
// inside a free block is unmapped (unmap_block); a segment left without
// pages is given back (release_expandable_segment).
func (a *refAllocator) unmapFree(s int32) {
	var frees []int32
	for b := a.segments[s].first; b != none; b = a.blocks[b].next {
		if a.blocks[b].free {
			frees = append(frees, b)
		}
	}
	for _, b := range frees {
		a.unmapBlock(s, b)
	}
	if seg := &a.segments[s]; seg.size == 0 && !seg.released {
		seg.released = true
		a.nSegs--
	}
}

// unmapBlock is unmap_block: the pages wholly inside free block b of
// segment s become an unmapped range (merged with unmapped neighbours, and
// with the unmapped end); the free bytes before and after them stay
// cached.
func (a *refAllocator) unmapBlock(s, b int32) {
	seg := &a.segments[s]
	page := a.pageOf(seg.pool)
	blk := &a.blocks[b]
	off, end := blk.offset, blk.offset+blk.size
	start, stop := (off+page-1)/page*page, end/page*page
	if start >= stop {
		return
	}
	a.uncache(seg.pool, b)
	u := b
	if start > off {
		a.blocks[b].size = start - off
		u = a.newBlock(s, start, 0)
		a.linkAfter(s, b, u)
		a.cache(seg.pool, b)
	}
	ub := &a.blocks[u]
	ub.offset, ub.size, ub.free, ub.unmapped = start, stop-start, false, true
	ub.gen++ // ids of the free block it was miss
	if stop < end {
		r := a.newBlock(s, stop, end-stop)
		a.linkAfter(s, u, r)
		a.cache(seg.pool, r)
	}
	seg = &a.segments[s]
	seg.size -= stop - start
	a.reserved -= stop - start
	if pr := a.blocks[u].prev; pr != none && a.blocks[pr].unmapped {
		a.blocks[pr].size += a.blocks[u].size
		a.unlinkBlock(s, u)
		u = pr
	}
	if n := a.blocks[u].next; n != none && a.blocks[n].unmapped {
		a.blocks[u].size += a.blocks[n].size
		a.unlinkBlock(s, n)
	}
	if a.blocks[u].next == none { // part of the unmapped end
		seg.end = a.blocks[u].offset
		a.unlinkBlock(s, u)
	}
}
