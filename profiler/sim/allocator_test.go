package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

const mib = 1 << 20

func TestRoundSize(t *testing.T) {
	for _, tc := range []struct{ in, want uint64 }{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {1000, 1024}, {mib, mib}, {mib + 1, mib + 512},
	} {
		if got := RoundSize(tc.in); got != tc.want {
			t.Errorf("RoundSize(%d): got %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestAllocatorPools checks the segment sizes of PyTorch's caching
// allocator for the three request classes.
func TestAllocatorPools(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		size                    uint64
		wantAlloc, wantReserved uint64
	}{
		{"tiny rounds to 512 B in a 2 MiB segment", 1, 512, 2 * mib},
		{"1 MiB is still small", mib, mib, 2 * mib},
		{"just over 1 MiB carves a 20 MiB segment", mib + 1, mib + 512, 20 * mib},
		{"9 MiB carves a 20 MiB segment", 9 * mib, 9 * mib, 20 * mib},
		{"10 MiB gets its own segment", 10 * mib, 10 * mib, 10 * mib},
		{"11 MiB + 1 rounds its segment to 12 MiB, block kept whole", 11*mib + 1, 12 * mib, 12 * mib},
		{"12.5 MiB: 1.5 MiB remains, so the block is split", 12*mib + mib/2, 12*mib + mib/2, 14 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAllocator(0)
			if _, err := a.Malloc(tc.size); err != nil {
				t.Fatal(err)
			}
			if a.Allocated() != tc.wantAlloc || a.Reserved() != tc.wantReserved {
				t.Errorf("got allocated %d reserved %d, want %d and %d", a.Allocated(), a.Reserved(), tc.wantAlloc, tc.wantReserved)
			}
		})
	}
}

func TestAllocatorReusesFreedBlocks(t *testing.T) {
	a := NewAllocator(0)
	x, _ := a.Malloc(100 * mib)
	a.Free(x)
	if a.Allocated() != 0 || a.Reserved() != 100*mib {
		t.Fatalf("after free: got allocated %d reserved %d, want 0 and %d", a.Allocated(), a.Reserved(), 100*mib)
	}
	// Two 40 MiB tensors fit into the cached 100 MiB segment (split).
	if _, err := a.Malloc(40 * mib); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Malloc(40 * mib); err != nil {
		t.Fatal(err)
	}
	if a.Reserved() != 100*mib || a.Segments() != 1 {
		t.Errorf("got reserved %d in %d segments, want %d in 1", a.Reserved(), a.Segments(), 100*mib)
	}
	// 30 MiB does not fit the 20 MiB remainder: a new segment.
	if _, err := a.Malloc(30 * mib); err != nil {
		t.Fatal(err)
	}
	if a.Reserved() != 130*mib {
		t.Errorf("got reserved %d, want %d", a.Reserved(), 130*mib)
	}
	a.EmptyCache()
	if a.Reserved() != 130*mib {
		t.Errorf("EmptyCache released a segment in use: reserved %d, want %d", a.Reserved(), 130*mib)
	}
}

func TestAllocatorBestFit(t *testing.T) {
	a := NewAllocator(0)
	big, _ := a.Malloc(64 * mib)
	mid, _ := a.Malloc(32 * mib)
	a.Free(big)
	a.Free(mid)
	// 30 MiB should take the 32 MiB segment, leaving the 64 MiB one whole.
	id, _ := a.Malloc(30 * mib)
	b := a.live[id]
	if b.seg.size != 32*mib {
		t.Errorf("got a block from a %d-byte segment, want the best fit of %d", b.seg.size, 32*mib)
	}
}

func TestAllocatorCoalesces(t *testing.T) {
	a := NewAllocator(0)
	ids := make([]BlockID, 4)
	for i := range ids {
		ids[i], _ = a.Malloc(4 * mib) // 4 x 4 MiB in one 20 MiB segment
	}
	if a.Segments() != 1 {
		t.Fatalf("got %d segments, want 1", a.Segments())
	}
	a.Free(ids[1])
	a.Free(ids[2])
	// 8 MiB fits only in the merged hole of blocks 1 and 2.
	id, _ := a.Malloc(8 * mib)
	if a.Segments() != 1 || a.live[id].offset != 4*mib {
		t.Errorf("got %d segments and offset %d, want 1 and %d", a.Segments(), a.live[id].offset, 4*mib)
	}
}

func TestAllocatorOOM(t *testing.T) {
	a := NewAllocator(100 * mib)
	x, err := a.Malloc(60 * mib)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Malloc(50 * mib)
	var oom *OOMError
	if !errors.Is(err, ErrOutOfMemory) || !errors.As(err, &oom) {
		t.Fatalf("got %v, want an *OOMError wrapping ErrOutOfMemory", err)
	}
	if oom.Requested != 50*mib || oom.Reserved != 60*mib {
		t.Errorf("got requested %d reserved %d, want %d and %d", oom.Requested, oom.Reserved, 50*mib, 60*mib)
	}
	// Freeing x leaves a cached 60 MiB segment; 70 MiB fits only once the
	// allocator releases its cache, as PyTorch does before giving up.
	a.Free(x)
	if _, err := a.Malloc(70 * mib); err != nil {
		t.Fatalf("got %v, want the cache released and the request met", err)
	}
	if a.Reserved() != 70*mib {
		t.Errorf("got reserved %d, want %d", a.Reserved(), 70*mib)
	}
}

func TestAllocatorPeaks(t *testing.T) {
	a := NewAllocator(0)
	x, _ := a.Malloc(30 * mib)
	a.Free(x)
	if a.MaxAllocated() != 30*mib || a.MaxReserved() != 30*mib {
		t.Errorf("got peaks %d/%d, want %d/%d", a.MaxAllocated(), a.MaxReserved(), 30*mib, 30*mib)
	}
	a.ResetPeak()
	if a.MaxAllocated() != 0 || a.MaxReserved() != 30*mib {
		t.Errorf("after ResetPeak: got %d/%d, want 0/%d", a.MaxAllocated(), a.MaxReserved(), 30*mib)
	}
}

// checkInvariants walks every segment and verifies the allocator's books.
func checkInvariants(t *testing.T, a *Allocator) {
	t.Helper()
	var reserved, allocated uint64
	live := 0
	for _, s := range a.segments {
		reserved += s.size
		var off uint64
		var prev *block
		for b := s.first; b != nil; b = b.next {
			if b.prev != prev || b.offset != off || b.seg != s {
				t.Fatalf("segment %d: broken block chain at offset %d", s.id, off)
			}
			if b.size%allocRound != 0 {
				t.Fatalf("block of %d bytes is not a multiple of 512", b.size)
			}
			if prev != nil && prev.free && b.free {
				t.Fatalf("segment %d: adjacent free blocks were not merged", s.id)
			}
			if !b.free {
				allocated += b.size
				live++
			}
			off += b.size
			prev = b
		}
		if off != s.size {
			t.Fatalf("segment %d: blocks cover %d of %d bytes", s.id, off, s.size)
		}
	}
	if reserved != a.Reserved() || allocated != a.Allocated() || live != len(a.live) {
		t.Fatalf("books: got reserved %d allocated %d live %d, walked %d %d %d", a.Reserved(), a.Allocated(), len(a.live), reserved, allocated, live)
	}
	if a.Reserved() < a.Allocated() {
		t.Fatalf("reserved %d < allocated %d", a.Reserved(), a.Allocated())
	}
}

// randomSize draws tensor-like sizes from all three pools.
func randomSize(r *rand.Rand) uint64 {
	switch r.IntN(3) {
	case 0:
		return 1 + r.Uint64N(mib)
	case 1:
		return mib + 1 + r.Uint64N(9*mib)
	default:
		return 10*mib + r.Uint64N(200*mib)
	}
}

func TestAllocatorProperties(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			a := NewAllocator(0)
			var ids []BlockID
			var lastReserved uint64
			for op := 0; op < 2000; op++ {
				if len(ids) > 0 && r.IntN(5) < 2 {
					i := r.IntN(len(ids))
					a.Free(ids[i])
					ids[i] = ids[len(ids)-1]
					ids = ids[:len(ids)-1]
				} else {
					size := randomSize(r)
					pool := a.large
					if RoundSize(size) <= smallSize {
						pool = a.small
					}
					fits := len(pool) > 0 && pool[len(pool)-1].size >= RoundSize(size)
					before := a.Reserved()
					id, err := a.Malloc(size)
					if err != nil {
						t.Fatal(err)
					}
					if got := a.live[id].size; got < size || got%allocRound != 0 {
						t.Fatalf("request of %d bytes got a block of %d", size, got)
					}
					// Freed memory is reused: a request that a free block of
					// its pool can hold reserves nothing; one that none can
					// hold reserves a new segment.
					if fits && a.Reserved() != before {
						t.Fatalf("op %d: %d bytes fit a free block but reserved grew from %d to %d", op, size, before, a.Reserved())
					}
					if !fits && a.Reserved() <= before {
						t.Fatalf("op %d: %d bytes fit no free block but reserved stayed %d", op, size, before)
					}
					ids = append(ids, id)
				}
				if a.Reserved() < lastReserved {
					t.Fatalf("op %d: reserved fell from %d to %d without EmptyCache", op, lastReserved, a.Reserved())
				}
				lastReserved = a.Reserved()
				if op%97 == 0 {
					checkInvariants(t, a)
				}
			}
			checkInvariants(t, a)
			for _, id := range ids {
				a.Free(id)
			}
			checkInvariants(t, a)
			if a.Allocated() != 0 {
				t.Fatalf("all freed: got allocated %d, want 0", a.Allocated())
			}
			a.EmptyCache()
			if a.Reserved() != 0 || a.Segments() != 0 {
				t.Fatalf("after EmptyCache: got reserved %d in %d segments, want 0", a.Reserved(), a.Segments())
			}
		})
	}
}

func BenchmarkAllocator(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := make([]uint64, 4096)
	for i := range sizes {
		sizes[i] = randomSize(r)
	}
	a := NewAllocator(0)
	live := make([]BlockID, 0, 512)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(live) >= 256 {
			j := i % len(live)
			a.Free(live[j])
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			continue
		}
		id, err := a.Malloc(sizes[i%len(sizes)])
		if err != nil {
			b.Fatal(err)
		}
		live = append(live, id)
	}
}

// The caching allocator keeps freed segments: NVML keeps seeing them.
func ExampleAllocator() {
	a := NewAllocator(0)
	x, _ := a.Malloc(100 << 20) // 100 MiB: a segment of its own
	y, _ := a.Malloc(1000)      // 1000 B: rounded to 1024 B in a 2 MiB small-pool segment
	a.Free(x)
	a.Free(y)
	fmt.Printf("allocated %d B, reserved %s\n", a.Allocated(), formatMiB(a.Reserved()))
	a.EmptyCache()
	fmt.Printf("after empty_cache: reserved %d B\n", a.Reserved())
	// Output:
	// allocated 0 B, reserved 102.00 MiB
	// after empty_cache: reserved 0 B
}
