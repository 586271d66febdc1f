package alloc

import (
	"fmt"
	"testing"
)

// expStep is one event of a hand-worked expandable-segments case: a
// request of m MiB (named by its order: a, b, ...), a free of the block
// named free, or empty_cache; then the reserved MiB, and for a request the
// offset (MiB) of its block in the segment.
type expStep struct {
	m        uint64
	free     byte
	empty    bool
	reserved uint64
	offset   uint64
}

// TestExpandableHandWorked: with expandable segments (20 MiB pages in the
// large pool), empty_cache unmaps every page that lies wholly in a free
// block, also inside the segment (release_blocks -> unmap_block ->
// ExpandableSegment::unmap, c10/cuda/CUDACachingAllocator.cpp at
// 001074d2); a later request maps pages into the lowest unmapped range
// that, with the free blocks around it, holds it (find_expandable_block,
// map_block); and best fit counts a free block's unmapped neighbour
// (get_free_block's expandable_size). Worked by hand from that source,
// not measured.
func TestExpandableHandWorked(t *testing.T) {
	cases := []struct {
		name  string
		steps []expStep
	}{
		{"a page inside a free block is unmapped, then mapped again", []expStep{
			{m: 30, reserved: 40, offset: 0},   // a [0,30), free [30,40)
			{m: 30, reserved: 60, offset: 30},  // b: the free end grows a page: [30,60)
			{m: 30, reserved: 100, offset: 60}, // c [60,90), free [90,100)
			{free: 'b', reserved: 100},
			// [30,60) is free: its page [40,60) goes; [30,40) and [90,100)
			// hold no whole page. (The end-only model kept 100 MiB.)
			{empty: true, reserved: 80},
			// No cached block holds 15 MiB: the unmapped [40,60) with the
			// free [30,40) before it does; one page is mapped again. (The
			// end-only model grew the end: 120 MiB.)
			{m: 15, reserved: 100, offset: 30},
		}},
		{"best fit counts the unmapped range after a free block", []expStep{
			{m: 30, reserved: 40, offset: 0},
			{m: 30, reserved: 60, offset: 30},
			{m: 12, reserved: 80, offset: 60},  // c [60,72), free [72,80)
			{m: 30, reserved: 120, offset: 72}, // d [72,102), free [102,120)
			{free: 'b', reserved: 120},
			{empty: true, reserved: 100}, // [40,60) unmapped; free [30,40)
			{free: 'c', reserved: 100},   // free [60,72), between [40,60) and d
			// 10 MiB: the smallest cached block, [30,40), can grow to 30
			// MiB; the next by (size, address), [60,72), only to 12: it is
			// taken. (The end-only model took [30,40).)
			{m: 10, reserved: 100, offset: 60},
		}},
		{"an unmapped range too small is passed over, then used alone", []expStep{
			{m: 30, reserved: 40, offset: 0},
			{m: 30, reserved: 60, offset: 30},
			{m: 30, reserved: 100, offset: 60},
			{free: 'b', reserved: 100},
			{empty: true, reserved: 80},       // as in the first case
			{m: 10, reserved: 80, offset: 30}, // [30,40) exactly; [90,100) could grow further
			// 25 MiB: [40,60) is 20 MiB between blocks in use; the free
			// end [90,100) grows a page.
			{m: 25, reserved: 100, offset: 90},
			// 18 MiB: [40,60) holds it; its page is mapped.
			{m: 18, reserved: 120, offset: 40},
		}},
		{"a segment left without pages is given back", []expStep{
			{m: 30, reserved: 40, offset: 0},
			{free: 'a', reserved: 40},
			{empty: true, reserved: 0},
			{m: 5, reserved: 20, offset: 0},
		}},
	}
	cfg, err := ParseConf("expandable_segments:True")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := New(cfg, 0)
			var ids []BlockID
			for i, st := range c.steps {
				what := fmt.Sprintf("step %d", i)
				switch {
				case st.m > 0:
					id, err := a.Malloc(st.m * mib)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					ids = append(ids, id)
					if off := a.blocks[uint32(id)-1].offset; off != st.offset*mib {
						t.Errorf("%s: block of %d MiB at %s, want %d MiB", what, st.m, FormatMiB(off), st.offset)
					}
				case st.free != 0:
					a.Free(ids[st.free-'a'])
				case st.empty:
					a.EmptyCache()
				}
				if a.Reserved() != st.reserved*mib {
					t.Fatalf("%s: reserved %s, want %d MiB", what, FormatMiB(a.Reserved()), st.reserved)
				}
				checkInvariants(t, a)
				if err := checkBuckets(a); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
		})
	}
}
