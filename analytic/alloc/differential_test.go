package alloc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// diffConfs are the configurations the differential tests play: every
// option that changes a decision, and a capacity that makes the release
// paths and out-of-memory errors happen.
var diffConfs = []struct {
	conf     string
	capacity uint64
	fraction uint64
}{
	{"", 0, 0},
	{"", 600 * mib, 0},
	{"max_split_size_mb:64", 0, 0},
	{"max_split_size_mb:40", 500 * mib, 0},
	{"max_split_size_mb:64,max_non_split_rounding_mb:100", 0, 0},
	{"expandable_segments:True", 0, 0},
	{"expandable_segments:True", 500 * mib, 0},
	{"roundup_power2_divisions:4", 0, 0},
	{"roundup_power2_divisions:[1:1,2:2,4:4,>:8]", 700 * mib, 0},
	{"garbage_collection_threshold:0.6", 0, 800 * mib},
	{"garbage_collection_threshold:0.6,max_split_size_mb:30", 0, 500 * mib},
}

// pair is the allocator and the reference, given the same events.
type pair struct {
	t    testing.TB
	a    *Allocator
	ref  *refAllocator
	ids  []BlockID // live, the allocator's
	rids []BlockID // the reference's, same order
	n    int       // events so far
}

func newPair(t testing.TB, cfg Config, capacity, fraction uint64) *pair {
	p := &pair{t: t, a: New(cfg, capacity), ref: newRef(cfg, capacity)}
	if fraction > 0 {
		p.a.SetMemoryFraction(fraction)
		p.ref.SetMemoryFraction(fraction)
	}
	return p
}

func (p *pair) malloc(size uint64, stream int) {
	var id BlockID
	var err error
	if stream == 0 && p.n%2 == 0 {
		id, err = p.a.Malloc(size) // mallocPlain where the configuration allows it
	} else {
		id, err = p.a.MallocStream(size, stream)
	}
	rid, rerr := p.ref.MallocStream(size, stream)
	if (err == nil) != (rerr == nil) || err != nil && !errors.Is(err, ErrOutOfMemory) {
		p.t.Fatalf("event %d, malloc %d on stream %d: error %v, reference %v", p.n, size, stream, err, rerr)
	}
	if err == nil {
		if p.a.BlockSize(id) != p.ref.BlockSize(rid) {
			p.t.Fatalf("event %d, malloc %d: block of %d, reference %d", p.n, size, p.a.BlockSize(id), p.ref.BlockSize(rid))
		}
		p.ids = append(p.ids, id)
		p.rids = append(p.rids, rid)
	} else if err.Error() != rerr.Error() {
		p.t.Fatalf("event %d: error %q, reference %q", p.n, err, rerr)
	}
	p.check("malloc")
}

func (p *pair) free(i int) {
	p.a.Free(p.ids[i])
	p.ref.Free(p.rids[i])
	last := len(p.ids) - 1
	p.ids[i], p.rids[i] = p.ids[last], p.rids[last]
	p.ids, p.rids = p.ids[:last], p.rids[:last]
	p.check("free")
}

func (p *pair) check(what string) {
	p.t.Helper()
	p.n++
	a, r := p.a, p.ref
	if a.Allocated() != r.Allocated() || a.Reserved() != r.Reserved() || a.MaxAllocated() != r.MaxAllocated() ||
		a.MaxReserved() != r.MaxReserved() || a.Segments() != r.Segments() {
		p.t.Fatalf("event %d (%s): allocated %d reserved %d peaks %d %d segments %d; reference %d %d peaks %d %d segments %d",
			p.n, what, a.Allocated(), a.Reserved(), a.MaxAllocated(), a.MaxReserved(), a.Segments(),
			r.Allocated(), r.Reserved(), r.MaxAllocated(), r.MaxReserved(), r.Segments())
	}
	if err := checkBuckets(a); err != nil {
		p.t.Fatalf("event %d (%s): %v", p.n, what, err)
	}
}

// checkBuckets checks the free lists' order: buckets by ascending size,
// none empty, each listing free blocks of its size by descending address.
func checkBuckets(a *Allocator) error {
	for pi := range a.pools {
		pl := &a.pools[pi]
		for i, bk := range pl.free {
			blocks := pl.blocksOf(i)
			if len(blocks) == 0 || i > 0 && pl.free[i-1].size >= bk.size {
				return fmt.Errorf("pool %d: bucket %d of %d B (%d blocks) out of order or empty", pi, i, bk.size, len(blocks))
			}
			for j, x := range blocks {
				blk := &a.blocks[x.b]
				if !blk.free || blk.size != bk.size || a.keyOf(x.b) != x.key || a.segments[blk.seg].pool != int32(pi) {
					return fmt.Errorf("pool %d: bucket of %d B lists block %d (%+v)", pi, bk.size, x.b, *blk)
				}
				if j > 0 && blocks[j-1].key <= x.key {
					return fmt.Errorf("pool %d: bucket of %d B out of address order at %d", pi, bk.size, j)
				}
			}
		}
	}
	return nil
}

// diffSize draws sizes that repeat (so that many cached blocks share a
// size, as a model's layers do) as well as arbitrary ones of all classes.
func diffSize(r *rand.Rand, repeated []uint64) uint64 {
	if r.IntN(3) > 0 {
		return repeated[r.IntN(len(repeated))]
	}
	return randomSize(r)
}

// TestDifferentialRandom plays random sequences of allocations, frees,
// empty_cache and peak resets through the allocator and the reference
// implementation (reference_test.go) and compares every figure after every
// event.
func TestDifferentialRandom(t *testing.T) {
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	for _, dc := range diffConfs {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s/cap%d/seed%d", dc.conf, dc.capacity>>20, seed), func(t *testing.T) {
				cfg, err := ParseConf(dc.conf)
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(seed, 99))
				repeated := make([]uint64, 6)
				for i := range repeated {
					repeated[i] = randomSize(r)
				}
				p := newPair(t, cfg, dc.capacity, dc.fraction)
				for op := 0; op < ops; op++ {
					switch k := r.IntN(100); {
					case k < 45 && len(p.ids) > 0:
						p.free(r.IntN(len(p.ids)))
					case k < 47 && len(p.ids) > 0:
						// Free a run of the latest blocks, newest first, as
						// backward frees a layer's activations.
						for n := r.IntN(8); n > 0 && len(p.ids) > 0; n-- {
							p.free(len(p.ids) - 1)
						}
					case k < 49:
						p.a.EmptyCache()
						p.ref.EmptyCache()
						p.check("empty_cache")
					case k < 50:
						p.a.ResetPeak()
						p.ref.ResetPeak()
						p.check("reset_peak")
					default:
						stream := 0
						if r.IntN(8) == 0 {
							stream = 1 + r.IntN(2)
						}
						p.malloc(diffSize(r, repeated), stream)
					}
				}
				for len(p.ids) > 0 {
					p.free(len(p.ids) - 1)
				}
				p.a.EmptyCache()
				p.ref.EmptyCache()
				p.check("empty_cache")
			})
		}
	}
}

// FuzzDifferential reads the fuzzer's bytes as events (a byte for the
// kind, then its operands) and plays them through the allocator and the
// reference: every figure must agree after every event.
func FuzzDifferential(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0, 200, 1, 0, 3, 2, 0})
	f.Add([]byte{5, 0, 10, 0, 20, 0, 30, 1, 0, 1, 0, 2, 0})
	f.Add([]byte{6, 0, 255, 0, 255, 1, 1, 0, 128, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		dc := diffConfs[int(data[0])%len(diffConfs)]
		cfg, err := ParseConf(dc.conf)
		if err != nil {
			t.Fatal(err)
		}
		p := newPair(t, cfg, dc.capacity, dc.fraction)
		for i := 1; i < len(data) && p.n < 2000; i++ {
			switch data[i] % 4 {
			case 0, 1: // malloc: the next byte picks a size
				var x byte
				if i+1 < len(data) {
					i++
					x = data[i]
				}
				size := uint64(x%64+1) * 64 * 1024 // 64 KiB .. 4 MiB
				switch {
				case x >= 224:
					size = uint64(x-223) * 13 * mib / 2 // large: 6.5 .. 208 MiB
				case x >= 160:
					size = uint64(x%16+1) * 1536 * 1024 // 1.5 .. 24 MiB
				case x >= 128:
					size = uint64(x) * 700 // small, not 512-aligned
				}
				p.malloc(size, int(data[i]%8)/7)
			case 2: // free the block the next byte picks
				if len(p.ids) > 0 && i+1 < len(data) {
					i++
					p.free(int(data[i]) % len(p.ids))
				}
			case 3:
				p.a.EmptyCache()
				p.ref.EmptyCache()
				p.check("empty_cache")
			}
		}
	})
}
