package sim

import (
	"errors"
	"fmt"
	"sort"
)

// The caching allocator model. PyTorch's CUDA caching allocator
// (c10/cuda/CUDACachingAllocator.cpp) never gives memory back to the driver
// on free: it keeps segments obtained with cudaMalloc and carves blocks out
// of them. NVML sees the segments (reserved memory), not the blocks
// (allocated memory). The constants below are PyTorch's.
const (
	allocRound      = 512             // kMinBlockSize: every request is rounded up to 512 B
	smallSize       = 1 << 20         // kSmallSize: requests up to 1 MiB use the small pool
	smallSegment    = 2 << 20         // kSmallBuffer: small-pool segments are 2 MiB
	largeSegment    = 20 << 20        // kLargeBuffer: 1 MiB < request < 10 MiB carve 20 MiB segments
	minLargeAlloc   = 10 << 20        // kMinLargeAlloc: from here a request gets its own segment
	largeRound      = 2 << 20         // kRoundLarge: own segments are rounded up to 2 MiB
	largeSplitFloor = smallSize + 512 // a large-pool block is split only if more than 1 MiB remains
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
		formatMiB(e.Requested), formatMiB(e.Reserved), formatMiB(e.Capacity), formatMiB(e.Allocated))
}

// Unwrap makes errors.Is(err, ErrOutOfMemory) true.
func (e *OOMError) Unwrap() error { return ErrOutOfMemory }

// formatMiB prints bytes as binary MiB (or GiB from 1 GiB on), labelled.
func formatMiB(b uint64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
}

// BlockID names an allocation made by Allocator.Malloc. The zero BlockID is
// never returned for a live block; freeing it is a no-op.
type BlockID uint64

type segment struct {
	id    uint64
	size  uint64
	small bool
	first *block
}

type block struct {
	id         BlockID // 0 while free
	seg        *segment
	offset     uint64
	size       uint64
	free       bool
	prev, next *block // neighbours in the segment, by address
}

// freeList holds the free blocks of one pool ordered by (size, segment,
// offset), so the best fit is the first block not smaller than a request.
type freeList []*block

func blockLess(a, b *block) bool {
	if a.size != b.size {
		return a.size < b.size
	}
	if a.seg.id != b.seg.id {
		return a.seg.id < b.seg.id
	}
	return a.offset < b.offset
}

func (l *freeList) insert(b *block) {
	s := *l
	i := sort.Search(len(s), func(i int) bool { return !blockLess(s[i], b) })
	s = append(s, nil)
	copy(s[i+1:], s[i:])
	s[i] = b
	*l = s
}

func (l *freeList) remove(b *block) {
	s := *l
	i := sort.Search(len(s), func(i int) bool { return !blockLess(s[i], b) })
	if i >= len(s) || s[i] != b {
		panic("profiler: allocator free list is inconsistent")
	}
	*l = append(s[:i], s[i+1:]...)
}

// bestFit returns the smallest free block of at least size bytes, or nil.
func (l freeList) bestFit(size uint64) *block {
	i := sort.Search(len(l), func(i int) bool { return l[i].size >= size })
	if i == len(l) {
		return nil
	}
	return l[i]
}

// Allocator models PyTorch's CUDA caching allocator on one device and one
// stream:
//
//   - every request is rounded up to a multiple of 512 B;
//   - requests of at most 1 MiB come from 2 MiB small-pool segments;
//   - requests over 1 MiB and under 10 MiB come from 20 MiB large-pool
//     segments; larger requests get a segment of their own, rounded up to
//     2 MiB;
//   - a request takes the best-fitting free block of its pool (smallest
//     size, then oldest segment, then lowest address), split when the rest
//     is at least 512 B (small pool) or over 1 MiB (large pool); a freed
//     block merges with free neighbours in its segment;
//   - segments are never returned on Free: Reserved only shrinks through
//     EmptyCache or, as in PyTorch, when a request would pass the capacity
//     and the allocator first releases its wholly free segments and retries.
//
// Allocated counts whole blocks (after rounding and non-split remainders),
// as torch.cuda.memory_allocated does. The zero Allocator is not usable: use
// NewAllocator. An Allocator is not safe for concurrent use.
type Allocator struct {
	capacity  uint64 // 0: unlimited
	small     freeList
	large     freeList
	segments  []*segment
	live      map[BlockID]*block
	nextBlock BlockID
	nextSeg   uint64

	allocated, reserved       uint64
	maxAllocated, maxReserved uint64
}

// NewAllocator returns an empty allocator that may reserve at most capacity
// bytes in segments (0 means no limit).
func NewAllocator(capacity uint64) *Allocator {
	return &Allocator{capacity: capacity, live: make(map[BlockID]*block)}
}

// RoundSize is the allocator's rounding of a request: the next multiple of
// 512 B (512 B for a zero-byte request).
func RoundSize(size uint64) uint64 {
	if size < allocRound {
		return allocRound
	}
	return (size + allocRound - 1) / allocRound * allocRound
}

// segmentSize is the cudaMalloc size for a request of rounded bytes that no
// free block could serve.
func segmentSize(rounded uint64) uint64 {
	switch {
	case rounded <= smallSize:
		return smallSegment
	case rounded < minLargeAlloc:
		return largeSegment
	default:
		return (rounded + largeRound - 1) / largeRound * largeRound
	}
}

// Malloc allocates size bytes and returns the block's id. When the request
// cannot be met within the capacity it returns an *OOMError (which wraps
// ErrOutOfMemory) and changes nothing but what releasing the cache freed.
func (a *Allocator) Malloc(size uint64) (BlockID, error) {
	rounded := RoundSize(size)
	small := rounded <= smallSize
	pool := &a.large
	if small {
		pool = &a.small
	}
	b := pool.bestFit(rounded)
	if b == nil {
		segSize := segmentSize(rounded)
		if a.capacity > 0 && a.reserved+segSize > a.capacity {
			a.releaseFreeSegments()
			if a.reserved+segSize > a.capacity {
				return 0, &OOMError{Requested: size, Capacity: a.capacity, Reserved: a.reserved, Allocated: a.allocated}
			}
		}
		a.nextSeg++
		seg := &segment{id: a.nextSeg, size: segSize, small: small}
		b = &block{seg: seg, size: segSize, free: true}
		seg.first = b
		a.segments = append(a.segments, seg)
		a.reserved += segSize
		if a.reserved > a.maxReserved {
			a.maxReserved = a.reserved
		}
		pool.insert(b)
	}
	pool.remove(b)
	rest := b.size - rounded
	if (small && rest >= allocRound) || (!small && rest >= largeSplitFloor) {
		r := &block{seg: b.seg, offset: b.offset + rounded, size: rest, free: true, prev: b, next: b.next}
		if b.next != nil {
			b.next.prev = r
		}
		b.next = r
		b.size = rounded
		pool.insert(r)
	}
	a.nextBlock++
	b.id = a.nextBlock
	b.free = false
	a.live[b.id] = b
	a.allocated += b.size
	if a.allocated > a.maxAllocated {
		a.maxAllocated = a.allocated
	}
	return b.id, nil
}

// Free returns a block to its segment's free space (merging it with free
// neighbours); the segment stays reserved. Freeing 0 or an id that is not
// live is a no-op.
func (a *Allocator) Free(id BlockID) {
	b, ok := a.live[id]
	if !ok {
		return
	}
	delete(a.live, id)
	a.allocated -= b.size
	pool := &a.large
	if b.seg.small {
		pool = &a.small
	}
	b.free = true
	b.id = 0
	if p := b.prev; p != nil && p.free {
		pool.remove(p)
		p.size += b.size
		p.next = b.next
		if b.next != nil {
			b.next.prev = p
		}
		b = p
	}
	if n := b.next; n != nil && n.free {
		pool.remove(n)
		b.size += n.size
		b.next = n.next
		if n.next != nil {
			n.next.prev = b
		}
	}
	pool.insert(b)
}

// releaseFreeSegments gives back every segment that holds no allocation.
func (a *Allocator) releaseFreeSegments() {
	kept := a.segments[:0]
	for _, s := range a.segments {
		if s.first.free && s.first.next == nil {
			if s.small {
				a.small.remove(s.first)
			} else {
				a.large.remove(s.first)
			}
			a.reserved -= s.size
			continue
		}
		kept = append(kept, s)
	}
	for i := len(kept); i < len(a.segments); i++ {
		a.segments[i] = nil
	}
	a.segments = kept
}

// EmptyCache releases every segment that holds no allocation, as
// torch.cuda.empty_cache does.
func (a *Allocator) EmptyCache() { a.releaseFreeSegments() }

// Allocated is the bytes held by live blocks (torch.cuda.memory_allocated).
func (a *Allocator) Allocated() uint64 { return a.allocated }

// Reserved is the bytes of all segments (torch.cuda.memory_reserved): what
// the driver, and so NVML, sees.
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

// Segments is the number of segments reserved.
func (a *Allocator) Segments() int { return len(a.segments) }
