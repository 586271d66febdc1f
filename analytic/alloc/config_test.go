package alloc

import (
	"strings"
	"testing"
)

func TestParseConf(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
	}{
		{"", Config{}},
		{"expandable_segments:True", Config{ExpandableSegments: true}},
		{"expandable_segments:False,backend:native", Config{}},
		{" max_split_size_mb:128 , garbage_collection_threshold:0.6 ", Config{MaxSplitSize: 128 << 20, GarbageCollectionThreshold: 0.6}},
		{"max_non_split_rounding_mb:64", Config{MaxNonSplitRounding: 64 << 20}},
		{"release_lock_on_cudamalloc:True,pinned_num_register_threads:8", Config{}},
		{"roundup_power2_divisions:2", Config{RoundupPower2Divisions: [intervals]uint64{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}}},
		{"roundup_power2_divisions:[1:4,4:2,>:1]", Config{RoundupPower2Divisions: [intervals]uint64{4, 0, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}},
	} {
		got, err := ParseConf(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseConf(%q): got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseConfErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"expandable_segments:true", `expandable_segments "true": use True or False`},
		{"max_split_size_mb:20", "max_split_size_mb 20: too small, must be more than 20"},
		{"max_split_size_mb:big", `max_split_size_mb "big": want a whole number of MiB`},
		{"garbage_collection_threshold:1.0", "garbage_collection_threshold \"1.0\": must be a number between 0.0 and 1.0"},
		{"roundup_power2_divisions:3", "divisions must be a power of 2"},
		{"roundup_power2_divisions:[3:2]", `interval "3" must be a power of 2 MiB`},
		{"roundup_power2_divisions:[64:2,4:2]", "out of order"},
		{"roundup_power2_divisions:[64:2", "missing ']'"},
		{"backend:cudaMallocAsync", "not modelled"},
		{"max_split_mb:128", `unknown option "max_split_mb"; use one of backend, max_split_size_mb`},
		{"expandable_segments", "expected \":\", got the end of the value"},
		{"expandable_segments:True;max_split_size_mb:64", "use True or False"},
		{"expandable_segments:True max_split_size_mb:64", "options are separated by commas"},
		{"expandable_segments:True,", "trailing comma"},
		{"expandable_segments:True,expandable_segments:False", "given twice"},
		{"pinned_use_cuda_host_register:yes", "use True or False"},
	} {
		_, err := ParseConf(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConf(%q): got %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseConf: ParseConf never panics, and what it accepts String writes
// back to the same Config.
func FuzzParseConf(f *testing.F) {
	for _, s := range []string{"", "expandable_segments:True", "max_split_size_mb:128,garbage_collection_threshold:0.6",
		"roundup_power2_divisions:[256:1,512:2,>:8]", "backend:native", "roundup_power2_divisions:4", ",,:[]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConf(s)
		if err != nil {
			return
		}
		back, err := ParseConf(c.String())
		if err != nil || back != c {
			t.Fatalf("%q parsed to %+v, written as %q, read back as %+v (%v)", s, c, c.String(), back, err)
		}
	})
}
