package alloc

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

const mib = 1 << 20

// parseSize reads a case's size: MiB unless it ends in B or KiB; parts
// joined by + or - add up ("1MiB+1B", "19MiB-512B").
func parseSize(s string) (uint64, error) {
	var total int64
	sign := int64(1)
	for s != "" {
		i := strings.IndexAny(s[1:], "+-") + 1
		part := s
		if i > 0 {
			part, s = s[:i], s[i:]
		} else {
			s = ""
		}
		if part[0] == '+' || part[0] == '-' {
			sign = map[byte]int64{'+': 1, '-': -1}[part[0]]
			part = part[1:]
		}
		unit := float64(mib)
		switch {
		case strings.HasSuffix(part, "KiB"):
			unit, part = 1024, strings.TrimSuffix(part, "KiB")
		case strings.HasSuffix(part, "MiB"):
			part = strings.TrimSuffix(part, "MiB")
		case strings.HasSuffix(part, "B"):
			unit, part = 1, strings.TrimSuffix(part, "B")
		}
		x, err := strconv.ParseFloat(part, 64)
		if err != nil {
			return 0, err
		}
		total += sign * int64(x*unit)
	}
	return uint64(total), nil
}

type handCase struct {
	name     string
	conf     string
	capacity uint64
	lines    []string
}

func loadCases(t *testing.T) []handCase {
	t.Helper()
	f, err := os.Open("testdata/cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []handCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "case "):
			cases = append(cases, handCase{name: strings.TrimPrefix(line, "case ")})
		case strings.HasPrefix(line, "conf "):
			cases[len(cases)-1].conf = strings.TrimPrefix(line, "conf ")
		case strings.HasPrefix(line, "capacity "):
			n, err := strconv.ParseUint(strings.TrimPrefix(line, "capacity "), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			cases[len(cases)-1].capacity = n * mib
		default:
			cases[len(cases)-1].lines = append(cases[len(cases)-1].lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestHandWorkedCases plays the hand-worked cases of testdata/cases.txt,
// one per rule.
func TestHandWorkedCases(t *testing.T) {
	cases := loadCases(t)
	if len(cases) < 12 {
		t.Fatalf("got %d cases, want the 12 of testdata/cases.txt", len(cases))
	}
	for _, hc := range cases {
		t.Run(hc.name, func(t *testing.T) {
			cfg, err := ParseConf(hc.conf)
			if err != nil {
				t.Fatal(err)
			}
			a := New(cfg, hc.capacity)
			var ids []BlockID
			for _, line := range hc.lines {
				f := strings.Fields(line)
				if len(f) < 4 || f[2] != "->" {
					t.Fatalf("bad line %q", line)
				}
				switch f[0] {
				case "m":
					size, err := parseSize(f[1])
					if err != nil {
						t.Fatalf("%q: %v", line, err)
					}
					id, err := a.Malloc(size)
					ids = append(ids, id)
					wantOOM := f[3] == "oom"
					if wantOOM != errors.Is(err, ErrOutOfMemory) {
						t.Fatalf("%q: got error %v, want out of memory %v", line, err, wantOOM)
					}
					if wantOOM {
						f = append(f[:3], f[4:]...)
					}
				case "free":
					a.Free(ids[f[1][0]-'a'])
				default:
					t.Fatalf("bad line %q", line)
				}
				want, err := parseSize(f[3])
				if err != nil {
					t.Fatal(err)
				}
				if a.Reserved() != want {
					t.Fatalf("%q: got reserved %s, want %s", line, FormatMiB(a.Reserved()), FormatMiB(want))
				}
				if len(f) == 6 && f[4] == "alloc" {
					wantA, err := parseSize(f[5])
					if err != nil {
						t.Fatal(err)
					}
					if a.Allocated() != wantA {
						t.Fatalf("%q: got allocated %d, want %d", line, a.Allocated(), wantA)
					}
				}
				if a.Reserved() < a.Allocated() {
					t.Fatalf("%q: reserved %d < allocated %d", line, a.Reserved(), a.Allocated())
				}
			}
		})
	}
}

func TestRoundSize(t *testing.T) {
	for _, tc := range []struct{ in, want uint64 }{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {1000, 1024}, {mib, mib}, {mib + 1, mib + 512},
	} {
		if got := RoundSize(tc.in); got != tc.want {
			t.Errorf("RoundSize(%d): got %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestRoundupPower2Divisions checks round_size with divisions: 1200 MiB
// with 4 divisions lies between 1024 and 2048 MiB, whose steps are 1024,
// 1280, 1536 and 1792 MiB (PyTorch's own example), so it becomes 1280 MiB.
func TestRoundupPower2Divisions(t *testing.T) {
	cfg, err := ParseConf("roundup_power2_divisions:4")
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, 0)
	for _, tc := range []struct{ in, want uint64 }{
		{1200 * mib, 1280 * mib}, {1024 * mib, 1024 * mib}, {1500, 1536}, {3 * mib, 3 * mib}, {5*mib + 1, 6 * mib},
		{1024, 1024}, // not above 512 B x 4: plain rounding
	} {
		if got := a.roundSize(tc.in); got != tc.want {
			t.Errorf("round_size(%d) with 4 divisions: got %d, want %d", tc.in, got, tc.want)
		}
	}
	cfg, err = ParseConf("roundup_power2_divisions:[256:1,512:2,>:8]")
	if err != nil {
		t.Fatal(err)
	}
	a = New(cfg, 0)
	for _, tc := range []struct{ in, want uint64 }{
		{3*mib + 1, 3*mib + 512}, // interval 2-4 MiB: 1 division (the first entry fills up to 256 MiB)
		{700 * mib, 768 * mib},   // 512-1024 MiB: 2 divisions
		{2100 * mib, 2304 * mib}, // from 1 GiB: 8 divisions, steps of 256 MiB
	} {
		if got := a.roundSize(tc.in); got != tc.want {
			t.Errorf("round_size(%d) with [256:1,512:2,>:8]: got %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestStreams checks per-stream caching: a block freed on one stream is
// not reused on another.
func TestStreams(t *testing.T) {
	a := NewAllocator(0)
	x, _ := a.MallocStream(100*mib, 0)
	a.Free(x)
	if _, err := a.MallocStream(50*mib, 1); err != nil {
		t.Fatal(err)
	}
	if a.Reserved() != 150*mib {
		t.Errorf("other stream: got reserved %s, want 150 MiB (a new segment)", FormatMiB(a.Reserved()))
	}
	if _, err := a.MallocStream(50*mib, 0); err != nil {
		t.Fatal(err)
	}
	if a.Reserved() != 150*mib {
		t.Errorf("same stream: got reserved %s, want 150 MiB (the cached block)", FormatMiB(a.Reserved()))
	}
}

// TestGarbageCollection: with a fraction of 100 MiB and threshold 0.5, a
// new segment that no cached block serves first reclaims old cached
// segments until reserved is back under 50 MiB.
func TestGarbageCollection(t *testing.T) {
	cfg, err := ParseConf("garbage_collection_threshold:0.5")
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, 0)
	a.SetMemoryFraction(100 * mib)
	x, _ := a.Malloc(30 * mib)
	y, _ := a.Malloc(30 * mib)
	a.Free(x)
	a.Free(y)
	if _, err := a.Malloc(40 * mib); err != nil {
		t.Fatal(err)
	}
	if a.Reserved() != 40*mib {
		t.Errorf("got reserved %s, want 40 MiB: both cached 30 MiB segments reclaimed", FormatMiB(a.Reserved()))
	}
	// Without the fraction, the threshold does nothing.
	b := New(cfg, 0)
	x, _ = b.Malloc(30 * mib)
	y, _ = b.Malloc(30 * mib)
	b.Free(x)
	b.Free(y)
	_, _ = b.Malloc(40 * mib)
	if b.Reserved() != 100*mib {
		t.Errorf("no fraction: got reserved %s, want 100 MiB", FormatMiB(b.Reserved()))
	}
}

func TestStaleIDIsNoOp(t *testing.T) {
	a := NewAllocator(0)
	x, _ := a.Malloc(4 * mib)
	y, _ := a.Malloc(4 * mib)
	a.Free(x)
	a.Free(y) // merges: x's slot or y's is reused below
	z, _ := a.Malloc(4 * mib)
	a.Free(x)
	a.Free(y)
	if a.BlockSize(z) != 4*mib || a.Allocated() != 4*mib {
		t.Errorf("stale frees touched a live block: size %d, allocated %d", a.BlockSize(z), a.Allocated())
	}
}

// randomSize draws tensor-like sizes from all three classes.
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

// checkInvariants walks every segment: blocks tile it, no two free
// neighbours, the books agree, the free lists hold exactly the free blocks.
func checkInvariants(t *testing.T, a *Allocator) {
	t.Helper()
	var reserved, allocated uint64
	free := 0
	for s := range a.segments {
		seg := &a.segments[s]
		if seg.released {
			continue
		}
		reserved += seg.size
		var off, unmapped uint64
		prevFree, prevUnmapped := false, false
		for b := seg.first; b != none; b = a.blocks[b].next {
			blk := &a.blocks[b]
			if blk.offset != off || blk.seg != int32(s) {
				t.Fatalf("segment %d: block at %d, want %d", s, blk.offset, off)
			}
			if blk.free && prevFree || blk.unmapped && prevUnmapped {
				t.Fatalf("segment %d: two free or unmapped neighbours at %d", s, off)
			}
			prevFree, prevUnmapped = blk.free, blk.unmapped
			switch {
			case blk.free:
				free++
			case blk.unmapped:
				unmapped += blk.size
				if !seg.expandable || blk.next == none {
					t.Fatalf("segment %d: unmapped range at %d, not inside an expandable segment", s, off)
				}
			default:
				allocated += blk.size
			}
			off += blk.size
		}
		if off != seg.end || off-unmapped != seg.size {
			t.Fatalf("segment %d: blocks cover %d (%d unmapped) of %d (%d mapped)", s, off, unmapped, seg.end, seg.size)
		}
	}
	cached := 0
	for _, p := range a.pools {
		cached += p.cached()
	}
	if reserved != a.Reserved() || allocated != a.Allocated() || free != cached {
		t.Fatalf("books: reserved %d allocated %d free %d, walked %d %d %d", a.Reserved(), a.Allocated(), cached, reserved, allocated, free)
	}
}

// TestAllocatorProperties plays random sequences: reserved >= allocated
// after every event, blocks hold their request, nothing is lost, and
// EmptyCache after freeing everything gives all memory back.
func TestAllocatorProperties(t *testing.T) {
	for _, conf := range []string{"", "max_split_size_mb:64", "expandable_segments:True", "roundup_power2_divisions:4"} {
		for seed := uint64(1); seed <= 8; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", conf, seed), func(t *testing.T) {
				cfg, err := ParseConf(conf)
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(seed, 7))
				a := New(cfg, 0)
				var ids []BlockID
				for op := 0; op < 1500; op++ {
					if len(ids) > 0 && r.IntN(5) < 2 {
						i := r.IntN(len(ids))
						a.Free(ids[i])
						ids[i] = ids[len(ids)-1]
						ids = ids[:len(ids)-1]
					} else {
						size := randomSize(r)
						id, err := a.MallocStream(size, r.IntN(2))
						if err != nil {
							t.Fatal(err)
						}
						if got := a.BlockSize(id); got < size || got%MinBlockSize != 0 {
							t.Fatalf("request of %d bytes got a block of %d", size, got)
						}
						ids = append(ids, id)
					}
					if a.Reserved() < a.Allocated() {
						t.Fatalf("op %d: reserved %d < allocated %d", op, a.Reserved(), a.Allocated())
					}
					if op%97 == 0 {
						checkInvariants(t, a)
					}
				}
				for _, id := range ids {
					a.Free(id)
				}
				checkInvariants(t, a)
				a.EmptyCache()
				if a.Allocated() != 0 || a.Reserved() != 0 || a.Segments() != 0 {
					t.Fatalf("after EmptyCache: got allocated %d, reserved %d in %d segments, want 0", a.Allocated(), a.Reserved(), a.Segments())
				}
			})
		}
	}
}

// TestDefaultReuseProperty: without options, a request that a cached block
// of its pool can hold reserves nothing; one that none can hold reserves a
// new segment; reserved never falls without EmptyCache.
func TestDefaultReuseProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	a := NewAllocator(0)
	var ids []BlockID
	var last uint64
	for op := 0; op < 3000; op++ {
		if len(ids) > 0 && r.IntN(5) < 2 {
			i := r.IntN(len(ids))
			a.Free(ids[i])
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
		} else {
			size := randomSize(r)
			p := a.poolOf(0, RoundSize(size) <= SmallSize)
			fl := a.pools[p].free
			fits := len(fl) > 0 && fl[len(fl)-1].size >= RoundSize(size)
			before := a.Reserved()
			id, err := a.Malloc(size)
			if err != nil {
				t.Fatal(err)
			}
			if fits != (a.Reserved() == before) {
				t.Fatalf("op %d: fits a cached block %v, but reserved went from %d to %d", op, fits, before, a.Reserved())
			}
			ids = append(ids, id)
		}
		if a.Reserved() < last {
			t.Fatalf("op %d: reserved fell from %d to %d", op, last, a.Reserved())
		}
		last = a.Reserved()
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
	fmt.Printf("allocated %d B, reserved %s\n", a.Allocated(), FormatMiB(a.Reserved()))
	a.EmptyCache()
	fmt.Printf("after empty_cache: reserved %d B\n", a.Reserved())
	// Output:
	// allocated 0 B, reserved 102.00 MiB
	// after empty_cache: reserved 0 B
}
