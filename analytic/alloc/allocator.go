package alloc

import (
	"errors"
	"fmt"
	"math/bits"
)

// PyTorch's constants, c10/cuda/CUDACachingAllocator.cpp (namespace
// c10::cuda::CUDACachingAllocator::Native, top of the file).
const (
	MinBlockSize  = 512      // kMinBlockSize: every request is rounded up to a multiple of 512 B
	SmallSize     = 1 << 20  // kSmallSize: requests up to 1 MiB use the small pool
	SmallBuffer   = 2 << 20  // kSmallBuffer: small-pool segments (and small expandable pages) are 2 MiB
	LargeBuffer   = 20 << 20 // kLargeBuffer: 1 MiB < request < 10 MiB carve 20 MiB segments; large expandable pages
	MinLargeAlloc = 10 << 20 // kMinLargeAlloc: from 10 MiB a request gets a segment of its own
	RoundLarge    = 2 << 20  // kRoundLarge: such segments are rounded up to 2 MiB
)

// ErrOutOfMemory is wrapped by the error Malloc returns when a request does
// not fit in the allocator's capacity even after its cache is released.
var ErrOutOfMemory = errors.New("out of memory")

// OOMError is the allocator's out-of-memory error, with the figures PyTorch
// prints in its "CUDA out of memory" message.
type OOMError struct {
	Requested uint64 // bytes asked for (before rounding)
	Capacity  uint64 // bytes the allocator may reserve in all
	Reserved  uint64 // bytes reserved when the request failed
	Allocated uint64 // bytes allocated when the request failed
}

func (e *OOMError) Error() string {
	return fmt.Sprintf("CUDA out of memory. Tried to allocate %s; %s reserved of %s capacity (%s allocated)",
		FormatMiB(e.Requested), FormatMiB(e.Reserved), FormatMiB(e.Capacity), FormatMiB(e.Allocated))
}

// Unwrap makes errors.Is(err, ErrOutOfMemory) true.
func (e *OOMError) Unwrap() error { return ErrOutOfMemory }

// FormatMiB prints bytes as binary MiB (or GiB from 1 GiB on), labelled.
func FormatMiB(b uint64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
}

// BlockID names an allocation made by Allocator.Malloc. The zero BlockID is
// never returned for a live block (it is what a zero-byte request gets);
// freeing it is a no-op.
type BlockID uint64

const none = -1

// block is a range of one segment, free or allocated. Blocks live in
// Allocator.blocks and link to their neighbours by index.
type block struct {
	size, offset uint64
	seg          int32
	prev, next   int32  // neighbours in the segment by address; none at the ends
	gen          uint32 // bumped whenever the slot is reused, so stale ids miss
	gcBase       int64  // the pool's free-block search count when the block was cached
	up, down     int32  // while cached: the bucket's next higher and lower addresses
	pool         int32  // its segment's pool
	free         bool
	unmapped     bool // a range of an expandable segment without pages (neither free nor allocated)
}

type segment struct {
	size       uint64 // bytes reserved (mapped, for an expandable segment)
	end        uint64 // the end of its last block: size, or more when an expandable segment has unmapped ranges
	pool       int32  // index into Allocator.pools
	first      int32  // the block at offset 0
	expandable bool
	released   bool
}

// pool is PyTorch's BlockPool for one stream: the cached free blocks of one
// size class ordered by (size, segment, offset), so that the best fit is the
// first block not smaller than a request (BlockComparatorSize; segments
// stand in for addresses). The blocks are kept in buckets of one size
// each, by size; a bucket links its blocks by address (block.up and
// block.down), so that a block leaves it in constant time and the best
// fit is its tail, the lowest address.
type pool struct {
	stream int
	small  bool
	free   []bucket   // by size, none empty between operations
	hint   int        // the bucket of the last cached block: the searches try it first
	expSeg int32      // the pool's expandable segment, or none
	a      *Allocator // the blocks, for blocksOf and cached
}

// bucket is the cached blocks of one size: from head, the highest address,
// down to tail. It holds no pointer, so moving buckets is a plain copy.
type bucket struct {
	size       uint64
	head, tail int32
}

// entry is a cached block with its address as one number: segment and
// offset (in 512 B units).
type entry struct {
	key uint64
	b   int32
}

func (a *Allocator) keyOf(b int32) uint64 {
	blk := &a.blocks[b]
	return uint64(blk.seg)<<32 | blk.offset/MinBlockSize
}

// searchSize returns the index of the first bucket of at least size bytes.
func searchSize(s []bucket, size uint64) int {
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

// blocksOf is bucket i's blocks, by descending address.
func (pl *pool) blocksOf(i int) []entry {
	var bs []entry
	for b := pl.free[i].head; b != none; b = pl.a.blocks[b].down {
		bs = append(bs, entry{pl.a.keyOf(b), b})
	}
	return bs
}

// unlink takes cached block b out of bucket i of pool pl. A bucket that
// empties stays in place, as a hole that the caller fills (cacheAt) or
// closes (closeHole) before the pool is searched again: unlink returns i
// then, else -1.
func (a *Allocator) unlink(pl *pool, i int, b int32) int {
	blk := &a.blocks[b]
	up, down := blk.up, blk.down
	bk := &pl.free[i]
	if up != none {
		a.blocks[up].down = down
	} else {
		bk.head = down
	}
	if down != none {
		a.blocks[down].up = up
	} else {
		bk.tail = up
	}
	if bk.head == none {
		return i
	}
	return -1
}

// closeHole takes empty bucket h out (none when h < 0).
func (pl *pool) closeHole(h int) {
	if h < 0 {
		return
	}
	s := pl.free
	copy(s[h:], s[h+1:])
	pl.free = s[:len(s)-1]
}

// bucketFor returns the index of the bucket of size bytes, making the
// bucket if there is none. Empty bucket hole (none when < 0) is reused
// for a new bucket, or closed: buckets between the two positions move by
// one, where taking one out and making another would move all that
// follow them twice.
func (pl *pool) bucketFor(size uint64, hole int) int {
	s := pl.free
	if hole < 0 {
		i := pl.hint
		if uint(i) > uint(len(s)) || i < len(s) && s[i].size < size || i > 0 && s[i-1].size >= size {
			i = searchSize(s, size)
		}
		if i < len(s) && s[i].size == size {
			return i
		}
		s = append(s, bucket{})
		copy(s[i+1:], s[i:])
		s[i] = bucket{size, none, none}
		pl.free = s
		return i
	}
	h := s[hole].size
	switch {
	case size == h:
		return hole
	case size < h && (hole == 0 || s[hole-1].size < size),
		size > h && (hole+1 == len(s) || s[hole+1].size > size):
		s[hole].size = size // between its neighbours: nothing moves
		return hole
	case size < h:
		k := searchSize(s[:hole], size)
		if s[k].size == size { // k < hole: s[hole].size > size
			pl.closeHole(hole)
			return k
		}
		copy(s[k+1:hole+1], s[k:hole])
		s[k] = bucket{size, none, none}
		return k
	default:
		k := hole + 1 + searchSize(s[hole+1:], size)
		if k < len(s) && s[k].size == size {
			pl.closeHole(hole)
			return k - 1
		}
		copy(s[hole:k-1], s[hole+1:k])
		s[k-1] = bucket{size, none, none}
		return k - 1
	}
}

// link adds cached block b to bucket i of pool pl, by address.
func (a *Allocator) link(pl *pool, i int, b int32) {
	bl := a.blocks
	bk := &pl.free[i]
	blk := &bl[b]
	t := bk.tail
	if t == none {
		bk.head, bk.tail = b, b
		blk.up, blk.down = none, none
		return
	}
	key := uint64(blk.seg)<<32 | blk.offset/MinBlockSize
	tb := &bl[t]
	if uint64(tb.seg)<<32|tb.offset/MinBlockSize > key { // the lowest address: the common case
		tb.down = b
		blk.up, blk.down = t, none
		bk.tail = b
		return
	}
	var x int32 // the block above b
	if hb := &bl[bk.head]; uint64(hb.seg)<<32|hb.offset/MinBlockSize < key {
		x = none // the highest address (frees in address order)
	} else {
		// Up from the tail to the first higher address.
		x = tb.up
		for xb := &bl[x]; uint64(xb.seg)<<32|xb.offset/MinBlockSize < key; xb = &bl[x] {
			x = xb.up
		}
	}
	var y int32 // the block below b
	if x == none {
		y = bk.head
		bk.head = b
	} else {
		y = bl[x].down
		bl[x].down = b
	}
	blk.up, blk.down = x, y
	bl[y].up = b
}

// cached is the number of cached blocks of the pool.
func (pl *pool) cached() int {
	n := 0
	for i := range pl.free {
		for b := pl.free[i].head; b != none; b = pl.a.blocks[b].down {
			n++
		}
	}
	return n
}

// Allocator models PyTorch's native CUDA caching allocator on one device
// (DeviceCachingAllocator in c10/cuda/CUDACachingAllocator.cpp). See the
// package documentation for its rules and where each comes from.
//
// Allocated counts whole blocks (after rounding and non-split remainders),
// as torch.cuda.memory_allocated does; Reserved counts segments (mapped
// pages with expandable segments), as torch.cuda.memory_reserved does. The
// zero Allocator is not usable: use New or NewAllocator. An Allocator is
// not safe for concurrent use.
type Allocator struct {
	cfg        Config
	divisions  bool   // cfg.hasDivisions(), kept: round_size asks at every request
	plain      bool   // neither divisions, garbage collection nor expandable segments (mallocPlain)
	capacity   uint64 // cudaMalloc fails past this many reserved bytes; 0: unlimited
	allowedMax uint64 // torch.cuda.set_per_process_memory_fraction's limit; 0: not set
	gc         bool   // garbage_collection_threshold acts: set, with a memory fraction

	blocks   []block
	spare    []int32 // block slots free for reuse
	segments []segment
	pools    []pool // by (stream, small)
	nSegs    int

	largeSearches int64 // get_free_blocks_call_count of the large pools (GC only)
	scratch       []int32

	allocated, reserved       uint64
	maxAllocated, maxReserved uint64

	// cfg.maxSplit() and cfg.maxNonSplitRounding(), kept for every request.
	maxSplit, maxNonSplit uint64
}

// NewAllocator returns an allocator with PyTorch's default configuration
// that may reserve at most capacity bytes (0 means no limit).
func NewAllocator(capacity uint64) *Allocator { return New(Config{}, capacity) }

// New returns an allocator with configuration cfg (see ParseConf) that may
// reserve at most capacity bytes (0 means no limit): past it cudaMalloc
// fails and the allocator releases its cache and retries, as PyTorch does.
func New(cfg Config, capacity uint64) *Allocator {
	a := &Allocator{cfg: cfg, divisions: cfg.hasDivisions(), capacity: capacity, maxSplit: cfg.maxSplit(), maxNonSplit: cfg.maxNonSplitRounding()}
	a.setPlain()
	a.poolOf(0, true)
	a.poolOf(0, false)
	return a
}

// Reset empties the allocator for reuse with cfg and capacity, keeping its
// memory: a caller that plays many steps allocates nothing once warm.
func (a *Allocator) Reset(cfg Config, capacity uint64) {
	for i := range a.pools {
		a.pools[i].free = a.pools[i].free[:0]
	}
	pools := a.pools[:0]
	*a = Allocator{cfg: cfg, divisions: cfg.hasDivisions(), capacity: capacity, maxSplit: cfg.maxSplit(), maxNonSplit: cfg.maxNonSplitRounding(), blocks: a.blocks[:0], spare: a.spare[:0], segments: a.segments[:0], pools: pools, scratch: a.scratch[:0]}
	a.setPlain()
	a.poolOf(0, true)
	a.poolOf(0, false)
}

// SetMemoryFraction limits reserved memory to bytes, as
// torch.cuda.set_per_process_memory_fraction does (setMemoryFraction sets
// allowed_memory_maximum and set_fraction); garbage_collection_threshold
// only acts once it is set. 0 removes the limit.
func (a *Allocator) SetMemoryFraction(bytes uint64) {
	a.allowedMax = bytes
	a.gc = a.cfg.GarbageCollectionThreshold > 0 && bytes > 0
	a.setPlain()
}

// setPlain sets plain from the configuration and gc.
func (a *Allocator) setPlain() {
	a.plain = !a.divisions && !a.gc && !a.cfg.ExpandableSegments
}

// Config returns the allocator's configuration.
func (a *Allocator) Config() Config { return a.cfg }

// RoundSize is the default rounding of a request (round_size without
// roundup_power2_divisions): the next multiple of 512 B, and 512 B for
// requests under 512 B.
func RoundSize(size uint64) uint64 {
	if size < MinBlockSize {
		return MinBlockSize
	}
	return (size + MinBlockSize - 1) / MinBlockSize * MinBlockSize
}

// AllocationSize is the cudaMalloc size for a rounded request that no
// cached block could serve (get_allocation_size).
func AllocationSize(rounded uint64) uint64 {
	switch {
	case rounded <= SmallSize:
		return SmallBuffer
	case rounded < MinLargeAlloc:
		return LargeBuffer
	default:
		return (rounded + RoundLarge - 1) / RoundLarge * RoundLarge
	}
}

func (a *Allocator) poolOf(stream int, small bool) int32 {
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
		p.stream, p.small, p.free, p.expSeg, p.a = stream, small, p.free[:0], none, a
	} else {
		a.pools = append(a.pools, pool{stream: stream, small: small, expSeg: none, a: a})
	}
	return int32(len(a.pools) - 1)
}

// cache puts free block b into pool p's free list (insert_into_blocks).
func (a *Allocator) cache(p int32, b int32) { a.cacheAt(&a.pools[p], b, -1) }

// cacheAt is cache that fills or closes empty bucket hole of the pool
// (see unlink; none when hole < 0).
func (a *Allocator) cacheAt(pl *pool, b int32, hole int) {
	bl := a.blocks
	blk := &bl[b]
	if !pl.small {
		blk.gcBase = a.largeSearches
	}
	// bucketFor, for its common cases first: the hole fits the size
	// between its neighbours; the hint is the bucket of the size.
	i := hole
	size, s := blk.size, pl.free
	if hole >= 0 {
		if h := s[hole].size; size < h && (hole == 0 || s[hole-1].size < size) || size > h && (hole+1 == len(s) || s[hole+1].size > size) {
			s[hole].size = size
		} else if size != h {
			i = pl.bucketFor(size, hole)
		}
	} else if i = pl.hint; uint(i) >= uint(len(s)) || s[i].size != size {
		i = pl.bucketFor(size, hole)
	}
	pl.hint = i
	// link, for its three common cases: an empty bucket, the lowest
	// address, the highest address.
	bk := &pl.free[i]
	t := bk.tail
	if t == none {
		bk.head, bk.tail = b, b
		blk.up, blk.down = none, none
		return
	}
	tb := &bl[t]
	if tb.seg > blk.seg || tb.seg == blk.seg && tb.offset > blk.offset {
		tb.down = b
		blk.up, blk.down = t, none
		bk.tail = b
		return
	}
	if h := bk.head; bl[h].seg < blk.seg || bl[h].seg == blk.seg && bl[h].offset < blk.offset {
		bl[h].up = b
		blk.up, blk.down = none, h
		bk.head = b
		return
	}
	a.link(pl, i, b)
}

// uncache takes free block b out of pool p's free list.
func (a *Allocator) uncache(p int32, b int32) {
	pl := &a.pools[p]
	pl.closeHole(a.uncacheHole(pl, b))
}

// uncacheHole is uncache that leaves the bucket it empties in place, as
// unlink does, and returns its index (or -1).
func (a *Allocator) uncacheHole(pl *pool, b int32) int {
	bl := a.blocks
	blk := &bl[b]
	if up, down := blk.up, blk.down; up != none && down != none { // inside its bucket: no need to find it
		bl[up].down = down
		bl[down].up = up
		return -1
	}
	free := pl.free
	i := pl.hint
	if uint(i) >= uint(len(free)) || free[i].size != blk.size {
		i = searchSize(free, blk.size)
	}
	if i == len(free) || free[i].size != blk.size {
		panic("alloc: free list is inconsistent")
	}
	return a.unlink(pl, i, b)
}

func (a *Allocator) newBlock(seg int32, offset, size uint64) int32 {
	var i int32
	var gen uint32
	if n := len(a.spare); n > 0 {
		i = a.spare[n-1]
		a.spare = a.spare[:n-1]
		gen = a.blocks[i].gen + 1
	} else {
		a.blocks = append(a.blocks, block{})
		i = int32(len(a.blocks) - 1)
	}
	b := &a.blocks[i]
	b.size, b.offset, b.seg, b.prev, b.next, b.gen = size, offset, seg, none, none, gen
	b.gcBase, b.up, b.down, b.pool, b.free, b.unmapped = 0, none, none, a.segments[seg].pool, true, false
	return i
}

func (a *Allocator) dropBlock(i int32) {
	b := &a.blocks[i]
	b.free = false
	b.size = 0
	b.gen++
	a.spare = append(a.spare, i)
}

// roundSize is round_size: 512 B multiples, or the next power-of-2
// division when roundup_power2_divisions applies to the size.
func (a *Allocator) roundSize(size uint64) uint64 {
	if size < MinBlockSize {
		return MinBlockSize
	}
	if !a.divisions {
		return (size + MinBlockSize - 1) / MinBlockSize * MinBlockSize
	}
	if d := a.cfg.divisions(size); d > 1 && size > MinBlockSize*d {
		return roundupPower2Division(size, d)
	}
	return (size + MinBlockSize - 1) / MinBlockSize * MinBlockSize
}

// roundupPower2Division is roundup_power2_next_division: size rounded up to
// the next of d equal steps between the powers of 2 around it.
func roundupPower2Division(size, d uint64) uint64 {
	if size&(size-1) == 0 {
		return size
	}
	floor := uint64(1) << (63 - leadingZeros(size))
	step := floor >> (63 - leadingZeros(d))
	if step == 0 {
		return floor << 1
	}
	r := size &^ (step - 1)
	if r == size {
		return size
	}
	return r + step
}

func leadingZeros(x uint64) int { return bits.LeadingZeros64(x) }

// Malloc allocates size bytes on the default stream; see MallocStream.
func (a *Allocator) Malloc(size uint64) (BlockID, error) { return a.mallocPlain(size) }

// MallocStream allocates size bytes for stream (0 is the default stream;
// a freed block is only reused on its own stream) and returns the block's
// id. A zero-byte request allocates nothing and returns 0 (PyTorch's
// allocate does not call malloc for size 0). When the request cannot be
// met within the capacity it returns an *OOMError (which wraps
// ErrOutOfMemory) and changes nothing but what releasing the cache freed.
func (a *Allocator) MallocStream(size uint64, stream int) (BlockID, error) {
	if size == 0 {
		return 0, nil
	}
	rounded := (size + MinBlockSize - 1) &^ (MinBlockSize - 1) // roundSize without divisions
	if a.divisions {
		rounded = a.roundSize(size)
	}
	small := rounded <= SmallSize
	var p int32 // New and Reset make the default stream's pools 0 (small) and 1
	if stream != 0 {
		p = a.poolOf(stream, small)
	} else if !small {
		p = 1
	}
	pl := &a.pools[p]
	b, hole := int32(none), -1
	if free := pl.free; len(free) > 0 && free[len(free)-1].size >= rounded {
		if a.gc || a.cfg.ExpandableSegments {
			b, hole = a.getFreeBlock(pl, rounded)
		} else {
			// getFreeBlock, inlined for the configurations without its
			// garbage-collection count and expandable walk.
			i := pl.hint
			if uint(i) >= uint(len(free)) || free[i].size < rounded || i > 0 && free[i-1].size >= rounded {
				i = searchSize(free, rounded)
			}
			if fs, ms := free[i].size, a.maxSplit; !(rounded < ms && fs >= ms || rounded >= ms && fs >= rounded+a.maxNonSplit) {
				b = free[i].tail
				hole = a.unlink(pl, i, b)
			}
		}
	} else if a.gc && !small {
		a.largeSearches++ // get_free_block found nothing
	}
	if b == none {
		if a.gc {
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
	bl := a.blocks
	blk := &bl[b]
	rest := blk.size - rounded
	var split bool
	if small || a.cfg.ExpandableSegments && a.segments[blk.seg].expandable {
		split = rest >= MinBlockSize
	} else {
		split = rounded < a.maxSplit && rest > SmallSize
	}
	if split {
		// The remainder, in a spare slot if there is one (newBlock).
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
		// cacheAt, for its most common case: the remainder alone fills
		// the bucket its block emptied, whose size it takes (smaller, so
		// only the bucket below can be in the way).
		if s := pl.free; hole >= 0 && (hole == 0 || s[hole-1].size < rest) {
			s[hole] = bucket{rest, r, r}
			if !pl.small {
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
	blk.gen++ // a new id: frees of an earlier allocation of this slot miss
	a.allocated += blk.size
	a.maxAllocated = max(a.maxAllocated, a.allocated)
	return BlockID(uint64(blk.gen)<<32 | uint64(b+1)), nil
}

func (a *Allocator) limit() uint64 {
	if a.allowedMax > 0 && (a.capacity == 0 || a.allowedMax < a.capacity) {
		return a.allowedMax
	}
	return a.capacity
}

// getFreeBlock is get_free_block: the best-fitting cached block of the
// pool, taken out of it, or none; and the bucket the block leaves empty,
// as take returns it.
func (a *Allocator) getFreeBlock(pl *pool, rounded uint64) (int32, int) {
	if a.gc && !pl.small {
		a.largeSearches++
	}
	// The caller found one at least that large. The bucket the last cached
	// block went into is often the one (a split's remainder serves the
	// next request): check it before searching.
	free := pl.free
	i := pl.hint
	if uint(i) >= uint(len(free)) || free[i].size < rounded || i > 0 && free[i-1].size >= rounded {
		i = searchSize(free, rounded)
	}
	b := free[i].tail
	if a.cfg.ExpandableSegments && a.segments[a.blocks[b].seg].expandable {
		b, i = a.expandableFit(pl, b, i)
	}
	size := pl.free[i].size
	if ms := a.maxSplit; rounded < ms && size >= ms {
		return none, -1 // do not return an oversized block for a smaller request
	} else if rounded >= ms && size >= rounded+a.maxNonSplit {
		return none, -1 // an oversized block serves only requests close to its size
	}
	return b, a.unlink(pl, i, b)
}

// allocBlock is alloc_block: a new segment (cudaMalloc) or, with
// expandable segments, more pages mapped onto the pool's segment. It
// returns the block that holds the request, not cached, or none when the
// capacity does not allow it.
func (a *Allocator) allocBlock(p int32, rounded uint64) int32 {
	if a.cfg.ExpandableSegments {
		return a.expand(p, rounded)
	}
	size := AllocationSize(rounded)
	if !a.room(size) {
		return none
	}
	seg := a.newSegment(p, size, false)
	return a.segments[seg].first
}

func (a *Allocator) room(size uint64) bool {
	l := a.limit()
	return l == 0 || a.reserved+size <= l
}

func (a *Allocator) newSegment(p int32, size uint64, expandable bool) int32 {
	a.segments = append(a.segments, segment{size: size, end: size, pool: p, expandable: expandable, first: none})
	s := int32(len(a.segments) - 1)
	if size > 0 {
		a.segments[s].first = a.newBlock(s, 0, size)
	}
	a.nSegs++
	a.grow(size)
	return s
}

func (a *Allocator) grow(size uint64) {
	a.reserved += size
	a.maxReserved = max(a.maxReserved, a.reserved)
}

func (a *Allocator) lastBlock(s int32) int32 {
	last := int32(none)
	for b := a.segments[s].first; b != none; b = a.blocks[b].next {
		last = b
	}
	return last
}

// Free returns a block to its pool (free_block), merging it with free
// neighbours in its segment (try_merge_blocks); the segment stays
// reserved. Freeing 0 or an id that is not live is a no-op.
func (a *Allocator) Free(id BlockID) {
	bl := a.blocks              // Free makes no block: bl stays valid
	i := uint64(uint32(id)) - 1 // id 0 wraps past len(bl)
	if i >= uint64(len(bl)) {
		return
	}
	b := int32(i)
	blk := &bl[b]
	if blk.free || blk.size == 0 || blk.gen != uint32(id>>32) {
		return
	}
	a.allocated -= blk.size
	pl := &a.pools[blk.pool]
	blk.free = true
	hole := -1 // a bucket the merges left empty, for cacheAt
	if pr := blk.prev; pr != none && bl[pr].free {
		hole = a.uncacheHole(pl, pr)
		pb := &bl[pr]
		pb.size += blk.size
		next := blk.next
		pb.next = next
		if next != none {
			bl[next].prev = pr
		}
		a.dropBlock(b)
		b, blk = pr, pb
	}
	if n := blk.next; n != none && bl[n].free {
		pl.closeHole(hole)
		hole = a.uncacheHole(pl, n)
		nb := &bl[n]
		blk.size += nb.size
		next := nb.next
		blk.next = next
		if next != none {
			bl[next].prev = b
		}
		a.dropBlock(n)
	}
	a.cacheAt(pl, b, hole)
}

// wholeFree reports whether segment s is one free block.
func (a *Allocator) wholeFree(s int32) bool {
	f := a.segments[s].first
	return f != none && a.blocks[f].free && a.blocks[f].next == none && a.blocks[f].prev == none
}

// releaseSegment gives back segment s, which must be one cached free block
// (release_block).
func (a *Allocator) releaseSegment(s int32) {
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
// segment unmaps every page that lies wholly in a free block
// (release_blocks, unmap_block; expandable.go).
func (a *Allocator) releaseCached() {
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
func (a *Allocator) releaseAvailable(p int32, rounded uint64) bool {
	ms := a.cfg.maxSplit()
	if ms == noLimit {
		return false
	}
	key := max(rounded, ms)
	pl := &a.pools[p]
	free := pl.free
	if i := searchSize(free, key); i < len(free) {
		seg := a.blocks[free[i].tail].seg
		if !a.wholeFree(seg) || a.segments[seg].expandable {
			return false
		}
		a.releaseSegment(seg)
		return true
	}
	// From the largest cached block down: buckets from the last, each
	// from its highest address (its first entry). Releasing a block takes
	// only that entry out, so the walk collects first and releases after.
	var released uint64
	segs := a.scratch[:0]
walk:
	for i := len(free) - 1; i >= 0; i-- {
		if free[i].size < ms {
			break
		}
		for b := free[i].head; b != none; b = a.blocks[b].down {
			if released >= key {
				break walk
			}
			seg := a.blocks[b].seg
			if !a.wholeFree(seg) || a.segments[seg].expandable {
				continue
			}
			released += free[i].size
			segs = append(segs, seg)
		}
	}
	for _, seg := range segs {
		a.releaseSegment(seg)
	}
	a.scratch = segs[:0]
	return released >= key
}

// garbageCollect is garbage_collect_cached_blocks: once reserved passes
// garbage_collection_threshold of the memory fraction, give back whole
// cached large-pool segments, the least recently reused first (those at
// least as old as the average), until reserved is back under it.
func (a *Allocator) garbageCollect() {
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
		for i := range a.pools[p].free {
			for b := a.pools[p].free[i].head; b != none; b = a.blocks[b].down {
				blk := &a.blocks[b]
				if blk.prev == none && blk.next == none && !a.segments[blk.seg].expandable {
					totalAge += a.largeSearches - blk.gcBase
					count++
					cands = append(cands, b)
				}
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
func (a *Allocator) EmptyCache() { a.releaseCached() }

// Allocated is the bytes held by live blocks (torch.cuda.memory_allocated).
func (a *Allocator) Allocated() uint64 { return a.allocated }

// Reserved is the bytes of all segments (torch.cuda.memory_reserved): what
// the driver, and so NVML, sees of the allocator.
func (a *Allocator) Reserved() uint64 { return a.reserved }

// MaxAllocated is the peak of Allocated since creation or ResetPeak.
func (a *Allocator) MaxAllocated() uint64 { return a.maxAllocated }

// MaxReserved is the peak of Reserved since creation or ResetPeak.
func (a *Allocator) MaxReserved() uint64 { return a.maxReserved }

// ResetPeak sets both peaks to the current figures
// (torch.cuda.reset_peak_memory_stats).
func (a *Allocator) ResetPeak() {
	a.maxAllocated = a.allocated
	a.maxReserved = a.reserved
}

// Segments is the number of segments reserved (an expandable segment with
// pages mapped counts once).
func (a *Allocator) Segments() int { return a.nSegs }

// BlockSize returns the size of live block id (after rounding, and with
// any remainder that was not split off), or 0 if id is not live.
func (a *Allocator) BlockSize(id BlockID) uint64 {
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
