package alloc

// This file keeps the allocator as it was before its free lists became
// size buckets (commit 80f0b0a, analytic/alloc/allocator.go): one sorted
// slice of cached blocks per pool. It is the reference the differential
// tests compare the allocator with, event by event; it is not used
// outside tests. Only its names differ from that commit's code, but for
// expandable segments, whose rules it takes from expandable.go
// (reference_expandable_test.go) since unmapped ranges inside a segment
// were modelled.

import "math/bits"

// block is a range of one segment, free or allocated. Blocks live in
// refAllocator.blocks and link to their neighbours by index.
type refBlock struct {
	size, offset uint64
	seg          int32
	prev, next   int32 // neighbours in the segment by address; none at the ends
	free         bool
	unmapped     bool
	gen          uint32 // bumped whenever the slot is reused, so stale ids miss
	gcBase       int64  // the pool's free-block search count when the block was cached
}

type refSegment struct {
	size       uint64 // bytes reserved (mapped, for an expandable segment)
	end        uint64 // the end of its last block
	pool       int32  // index into refAllocator.pools
	first      int32  // the block at offset 0
	expandable bool
	released   bool
}

// pool is PyTorch's BlockPool for one stream: the cached free blocks of one
// size class ordered by (size, segment, offset), so that the best fit is the
// first block not smaller than a request (BlockComparatorSize; segments
// stand in for addresses).
type refPool struct {
	stream int
	small  bool
	free   []refEntry
	expSeg int32 // the pool's expandable segment, or none
}

// entry is a cached block with its sort key inline: size, then segment and
// offset (in 512 B units) as one number.
type refEntry struct {
	size, key uint64
	b         int32
}

func (x refEntry) less(y refEntry) bool { return x.size < y.size || x.size == y.size && x.key < y.key }

func (a *refAllocator) entryOf(b int32) refEntry {
	blk := &a.blocks[b]
	return refEntry{blk.size, uint64(blk.seg)<<32 | blk.offset/MinBlockSize, b}
}

// search returns the index of the first entry not less than x.
func refSearch(s []refEntry, x refEntry) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// searchSize returns the index of the first entry of at least size bytes.
func refSearchSize(s []refEntry, size uint64) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].size < size {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// refAllocator is Allocator as it was (see the top of this file).
//
// Allocated counts whole blocks (after rounding and non-split remainders),
// as torch.cuda.memory_allocated does; Reserved counts segments (mapped
// pages with expandable segments), as torch.cuda.memory_reserved does. The
// zero refAllocator is not usable: use newRef. A refAllocator is
// not safe for concurrent use.
type refAllocator struct {
	cfg        Config
	capacity   uint64 // cudaMalloc fails past this many reserved bytes; 0: unlimited
	allowedMax uint64 // torch.cuda.set_per_process_memory_fraction's limit; 0: not set

	blocks   []refBlock
	spare    []int32 // block slots free for reuse
	segments []refSegment
	pools    []refPool // by (stream, small)
	nSegs    int

	largeSearches int64 // get_free_blocks_call_count of the large pools (GC only)

	allocated, reserved       uint64
	maxAllocated, maxReserved uint64
}

// New returns an allocator with configuration cfg (see ParseConf) that may
// reserve at most capacity bytes (0 means no limit): past it cudaMalloc
// fails and the allocator releases its cache and retries, as PyTorch does.
func newRef(cfg Config, capacity uint64) *refAllocator {
	a := &refAllocator{cfg: cfg, capacity: capacity}
	a.poolOf(0, true)
	a.poolOf(0, false)
	return a
}

// Reset empties the allocator for reuse with cfg and capacity, keeping its
// memory: a caller that plays many steps allocates nothing once warm.
func (a *refAllocator) Reset(cfg Config, capacity uint64) {
	for i := range a.pools {
		a.pools[i].free = a.pools[i].free[:0]
	}
	pools := a.pools[:0]
	*a = refAllocator{cfg: cfg, capacity: capacity, blocks: a.blocks[:0], spare: a.spare[:0], segments: a.segments[:0], pools: pools}
	a.poolOf(0, true)
	a.poolOf(0, false)
}

// SetMemoryFraction limits reserved memory to bytes, as
// torch.cuda.set_per_process_memory_fraction does (setMemoryFraction sets
// allowed_memory_maximum and set_fraction); garbage_collection_threshold
// only acts once it is set. 0 removes the limit.
func (a *refAllocator) SetMemoryFraction(bytes uint64) { a.allowedMax = bytes }

// Config returns the allocator's configuration.
func (a *refAllocator) Config() Config { return a.cfg }

// refRoundSize is the default rounding of a request (round_size without
// roundup_power2_divisions): the next multiple of 512 B, and 512 B for
// requests under 512 B.
func refRoundSize(size uint64) uint64 {
	if size < MinBlockSize {
		return MinBlockSize
	}
	return (size + MinBlockSize - 1) / MinBlockSize * MinBlockSize
}

// refAllocationSize is the cudaMalloc size for a rounded request that no
// cached block could serve (get_allocation_size).
func refAllocationSize(rounded uint64) uint64 {
	switch {
	case rounded <= SmallSize:
		return SmallBuffer
	case rounded < MinLargeAlloc:
		return LargeBuffer
	default:
		return (rounded + RoundLarge - 1) / RoundLarge * RoundLarge
	}
}

func (a *refAllocator) poolOf(stream int, small bool) int32 {
	if len(a.pools) >= 2 && stream == 0 {
		// The default stream's pools are made first, small then large.
		if small && a.pools[0].stream == 0 && a.pools[0].small {
			return 0
		}
		if !small && a.pools[1].stream == 0 && !a.pools[1].small {
			return 1
		}
	}
	for i := range a.pools {
		if a.pools[i].stream == stream && a.pools[i].small == small {
			return int32(i)
		}
	}
	if len(a.pools) < cap(a.pools) {
		a.pools = a.pools[:len(a.pools)+1]
		p := &a.pools[len(a.pools)-1]
		p.stream, p.small, p.free, p.expSeg = stream, small, p.free[:0], none
	} else {
		a.pools = append(a.pools, refPool{stream: stream, small: small, expSeg: none})
	}
	return int32(len(a.pools) - 1)
}

// cache puts free block b into pool p's free list (insert_into_blocks).
func (a *refAllocator) cache(p int32, b int32) {
	pl := &a.pools[p]
	if !pl.small {
		a.blocks[b].gcBase = a.largeSearches
	}
	x := a.entryOf(b)
	s := pl.free
	i := refSearch(s, x)
	s = append(s, refEntry{})
	copy(s[i+1:], s[i:])
	s[i] = x
	pl.free = s
}

// uncache takes free block b out of pool p's free list.
func (a *refAllocator) uncache(p int32, b int32) {
	pl := &a.pools[p]
	s := pl.free
	i := refSearch(s, a.entryOf(b))
	if i >= len(s) || s[i].b != b {
		panic("alloc: free list is inconsistent")
	}
	pl.free = append(s[:i], s[i+1:]...)
}

func (a *refAllocator) newBlock(seg int32, offset, size uint64) int32 {
	var i int32
	if n := len(a.spare); n > 0 {
		i = a.spare[n-1]
		a.spare = a.spare[:n-1]
		gen := a.blocks[i].gen + 1
		a.blocks[i] = refBlock{gen: gen}
	} else {
		a.blocks = append(a.blocks, refBlock{})
		i = int32(len(a.blocks) - 1)
	}
	b := &a.blocks[i]
	b.seg, b.offset, b.size, b.prev, b.next, b.free = seg, offset, size, none, none, true
	return i
}

func (a *refAllocator) dropBlock(i int32) {
	a.blocks[i].free = false
	a.blocks[i].size = 0
	a.blocks[i].gen++
	a.spare = append(a.spare, i)
}

// roundSize is round_size: 512 B multiples, or the next power-of-2
// division when roundup_power2_divisions applies to the size.
func (a *refAllocator) roundSize(size uint64) uint64 {
	if size < MinBlockSize {
		return MinBlockSize
	}
	if !a.cfg.hasDivisions() {
		return (size + MinBlockSize - 1) / MinBlockSize * MinBlockSize
	}
	if d := a.cfg.divisions(size); d > 1 && size > MinBlockSize*d {
		return refRoundupPower2Division(size, d)
	}
	return (size + MinBlockSize - 1) / MinBlockSize * MinBlockSize
}

// roundupPower2Division is roundup_power2_next_division: size rounded up to
// the next of d equal steps between the powers of 2 around it.
func refRoundupPower2Division(size, d uint64) uint64 {
	if size&(size-1) == 0 {
		return size
	}
	floor := uint64(1) << (63 - refLeadingZeros(size))
	step := floor >> (63 - refLeadingZeros(d))
	if step == 0 {
		return floor << 1
	}
	r := size &^ (step - 1)
	if r == size {
		return size
	}
	return r + step
}

func refLeadingZeros(x uint64) int { return bits.LeadingZeros64(x) }

// Malloc allocates size bytes on the default stream; see MallocStream.
func (a *refAllocator) Malloc(size uint64) (BlockID, error) { return a.MallocStream(size, 0) }

// MallocStream allocates size bytes for stream (0 is the default stream;
// a freed block is only reused on its own stream) and returns the block's
// id. A zero-byte request allocates nothing and returns 0 (PyTorch's
// allocate does not call malloc for size 0). When the request cannot be
// met within the capacity it returns an *OOMError (which wraps
// ErrOutOfMemory) and changes nothing but what releasing the cache freed.
func (a *refAllocator) MallocStream(size uint64, stream int) (BlockID, error) {
	if size == 0 {
		return 0, nil
	}
	rounded := a.roundSize(size)
	small := rounded <= SmallSize
	p := a.poolOf(stream, small)
	b := a.getFreeBlock(p, rounded)
	if b == none {
		if a.cfg.GarbageCollectionThreshold > 0 && a.allowedMax > 0 {
			a.garbageCollect()
		}
		b = a.allocBlock(p, rounded)
		if b == none && a.releaseAvailable(p, rounded) {
			b = a.allocBlock(p, rounded)
		}
		if b == none {
			a.releaseCached()
			b = a.allocBlock(p, rounded)
		}
		if b == none {
			return 0, &OOMError{Requested: size, Capacity: a.limit(), Reserved: a.reserved, Allocated: a.allocated}
		}
	}
	// should_split and alloc_found_block.
	blk := &a.blocks[b]
	rest := blk.size - rounded
	var split bool
	if small || a.segments[blk.seg].expandable {
		split = rest >= MinBlockSize
	} else {
		split = rounded < a.cfg.maxSplit() && rest > SmallSize
	}
	if split {
		r := a.newBlock(blk.seg, 0, 0)
		blk = &a.blocks[b] // newBlock may have grown the slice
		rb := &a.blocks[r]
		rb.offset, rb.size, rb.prev, rb.next = blk.offset+rounded, rest, b, blk.next
		if blk.next != none {
			a.blocks[blk.next].prev = r
		}
		blk.next = r
		blk.size = rounded
		a.cache(p, r)
	}
	blk = &a.blocks[b]
	blk.free = false
	blk.gen++ // a new id: frees of an earlier allocation of this slot miss
	a.allocated += blk.size
	a.maxAllocated = max(a.maxAllocated, a.allocated)
	return BlockID(uint64(blk.gen)<<32 | uint64(b+1)), nil
}

func (a *refAllocator) limit() uint64 {
	if a.allowedMax > 0 && (a.capacity == 0 || a.allowedMax < a.capacity) {
		return a.allowedMax
	}
	return a.capacity
}

// getFreeBlock is get_free_block: the best-fitting cached block of the
// pool, taken out of it, or none.
func (a *refAllocator) getFreeBlock(p int32, rounded uint64) int32 {
	pl := &a.pools[p]
	if !pl.small && a.cfg.GarbageCollectionThreshold > 0 && a.allowedMax > 0 {
		a.largeSearches++
	}
	s := pl.free
	i := refSearchSize(s, rounded)
	if i == len(s) {
		return none
	}
	if a.cfg.ExpandableSegments {
		// expandable_size: a block that can grow into unmapped pages
		// counts as that large for best fit.
		for i+1 < len(s) && a.segments[a.blocks[s[i].b].seg].expandable && a.growable(s[i+1].b) < a.growable(s[i].b) {
			i++
		}
	}
	b, size := s[i].b, s[i].size
	if ms := a.cfg.maxSplit(); rounded < ms && size >= ms {
		return none // do not return an oversized block for a smaller request
	} else if rounded >= ms && size >= rounded+a.cfg.maxNonSplitRounding() {
		return none // an oversized block serves only requests close to its size
	}
	pl.free = append(s[:i], s[i+1:]...)
	return b
}

// allocBlock is alloc_block: a new segment (cudaMalloc) or, with
// expandable segments, more pages mapped onto the pool's segment. It
// returns the block that holds the request, not cached, or none when the
// capacity does not allow it.
func (a *refAllocator) allocBlock(p int32, rounded uint64) int32 {
	if a.cfg.ExpandableSegments {
		return a.expand(p, rounded)
	}
	size := refAllocationSize(rounded)
	if !a.room(size) {
		return none
	}
	seg := a.newSegment(p, size, false)
	return a.segments[seg].first
}

func (a *refAllocator) room(size uint64) bool {
	l := a.limit()
	return l == 0 || a.reserved+size <= l
}

func (a *refAllocator) newSegment(p int32, size uint64, expandable bool) int32 {
	a.segments = append(a.segments, refSegment{size: size, end: size, pool: p, expandable: expandable, first: none})
	s := int32(len(a.segments) - 1)
	if size > 0 {
		a.segments[s].first = a.newBlock(s, 0, size)
	}
	a.nSegs++
	a.grow(size)
	return s
}

func (a *refAllocator) grow(size uint64) {
	a.reserved += size
	a.maxReserved = max(a.maxReserved, a.reserved)
}

// expand is try_allocate_expandable_block for the one segment a pool grows
// at its end: the free block at the end (if any) plus as many new pages
// (2 MiB small, 20 MiB large) as the request still needs.
func (a *refAllocator) lastBlock(s int32) int32 {
	last := int32(none)
	for b := a.segments[s].first; b != none; b = a.blocks[b].next {
		last = b
	}
	return last
}

// Free returns a block to its pool (free_block), merging it with free
// neighbours in its segment (try_merge_blocks); the segment stays
// reserved. Freeing 0 or an id that is not live is a no-op.
func (a *refAllocator) Free(id BlockID) {
	i := int64(uint32(id)) - 1
	if i < 0 || i >= int64(len(a.blocks)) {
		return
	}
	b := int32(i)
	blk := &a.blocks[b]
	if blk.free || blk.size == 0 || blk.gen != uint32(id>>32) {
		return
	}
	a.allocated -= blk.size
	p := a.segments[blk.seg].pool
	blk.free = true
	if pr := blk.prev; pr != none && a.blocks[pr].free {
		a.uncache(p, pr)
		pb := &a.blocks[pr]
		pb.size += blk.size
		pb.next = blk.next
		if blk.next != none {
			a.blocks[blk.next].prev = pr
		}
		a.dropBlock(b)
		b = pr
	}
	blk = &a.blocks[b]
	if n := blk.next; n != none && a.blocks[n].free {
		a.uncache(p, n)
		nb := &a.blocks[n]
		blk.size += nb.size
		blk.next = nb.next
		if nb.next != none {
			a.blocks[nb.next].prev = b
		}
		a.dropBlock(n)
	}
	a.cache(p, b)
}

// wholeFree reports whether segment s is one free block.
func (a *refAllocator) wholeFree(s int32) bool {
	f := a.segments[s].first
	return f != none && a.blocks[f].free && a.blocks[f].next == none && a.blocks[f].prev == none
}

// releaseSegment gives back segment s, which must be one cached free block
// (release_block).
func (a *refAllocator) releaseSegment(s int32) {
	seg := &a.segments[s]
	f := seg.first
	a.uncache(seg.pool, f)
	a.dropBlock(f)
	a.reserved -= seg.size
	seg.size, seg.end, seg.first, seg.released = 0, 0, none, true
	a.nSegs--
}

// releaseCached is release_cached_blocks (and torch.cuda.empty_cache):
// every segment that holds no allocation is given back; an expandable
// segment unmaps every page that lies wholly in a free block.
func (a *refAllocator) releaseCached() {
	for s := range a.segments {
		seg := &a.segments[s]
		if seg.released {
			continue
		}
		if !seg.expandable {
			if a.wholeFree(int32(s)) {
				a.releaseSegment(int32(s))
			}
			continue
		}
		a.unmapFree(int32(s))
	}
}

// releaseAvailable is release_available_cached_blocks: with
// max_split_size_mb set, give back oversized cached blocks of the pool,
// the one that best fits the request, else the largest ones until their
// sum would hold it.
func (a *refAllocator) releaseAvailable(p int32, rounded uint64) bool {
	ms := a.cfg.maxSplit()
	if ms == noLimit {
		return false
	}
	key := max(rounded, ms)
	s := a.pools[p].free
	i := refSearchSize(s, key)
	if i < len(s) {
		seg := a.blocks[s[i].b].seg
		if !a.wholeFree(seg) || a.segments[seg].expandable {
			return false
		}
		a.releaseSegment(seg)
		return true
	}
	var released uint64
	for j := len(s) - 1; j >= 0 && released < key; j-- {
		b := a.pools[p].free[j].b
		if a.blocks[b].size < ms {
			break
		}
		seg := a.blocks[b].seg
		if !a.wholeFree(seg) || a.segments[seg].expandable {
			continue
		}
		released += a.blocks[b].size
		a.releaseSegment(seg)
	}
	return released >= key
}

// garbageCollect is garbage_collect_cached_blocks: once reserved passes
// garbage_collection_threshold of the memory fraction, give back whole
// cached large-pool segments, the least recently reused first (those at
// least as old as the average), until reserved is back under it.
func (a *refAllocator) garbageCollect() {
	threshold := uint64(a.cfg.GarbageCollectionThreshold * float64(a.allowedMax))
	if a.reserved <= threshold {
		return
	}
	target := a.reserved - threshold
	var totalAge int64
	count := 0
	var cands []int32
	for p := range a.pools {
		if a.pools[p].small {
			continue
		}
		for _, x := range a.pools[p].free {
			b := x.b
			blk := &a.blocks[b]
			if blk.prev == none && blk.next == none && !a.segments[blk.seg].expandable {
				totalAge += a.largeSearches - blk.gcBase
				count++
				cands = append(cands, b)
			}
		}
	}
	var reclaimed uint64
	freed := true
	for reclaimed < target && freed && count > 0 {
		avg := float64(totalAge) / float64(count)
		freed = false
		for k, b := range cands {
			if b == none {
				continue
			}
			age := a.largeSearches - a.blocks[b].gcBase
			if float64(age) >= avg {
				freed = true
				reclaimed += a.blocks[b].size
				totalAge -= age
				count--
				a.releaseSegment(a.blocks[b].seg)
				cands[k] = none
			}
		}
	}
}

// EmptyCache gives back every segment that holds no allocation (and the
// free pages at the end of expandable segments), as torch.cuda.empty_cache
// does.
func (a *refAllocator) EmptyCache() { a.releaseCached() }

// Allocated is the bytes held by live blocks (torch.cuda.memory_allocated).
func (a *refAllocator) Allocated() uint64 { return a.allocated }

// Reserved is the bytes of all segments (torch.cuda.memory_reserved): what
// the driver, and so NVML, sees of the allocator.
func (a *refAllocator) Reserved() uint64 { return a.reserved }

// MaxAllocated is the peak of Allocated since creation or ResetPeak.
func (a *refAllocator) MaxAllocated() uint64 { return a.maxAllocated }

// MaxReserved is the peak of Reserved since creation or ResetPeak.
func (a *refAllocator) MaxReserved() uint64 { return a.maxReserved }

// ResetPeak sets both peaks to the current figures
// (torch.cuda.reset_peak_memory_stats).
func (a *refAllocator) ResetPeak() {
	a.maxAllocated = a.allocated
	a.maxReserved = a.reserved
}

// Segments is the number of segments reserved (an expandable segment with
// pages mapped counts once).
func (a *refAllocator) Segments() int { return a.nSegs }

// BlockSize returns the size of live block id (after rounding, and with
// any remainder that was not split off), or 0 if id is not live.
func (a *refAllocator) BlockSize(id BlockID) uint64 {
	i := int64(uint32(id)) - 1
	if i < 0 || i >= int64(len(a.blocks)) {
		return 0
	}
	b := &a.blocks[i]
	if b.free || b.gen != uint32(id>>32) {
		return 0
	}
	return b.size
}
