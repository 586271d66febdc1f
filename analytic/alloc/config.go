package alloc

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// noLimit is PyTorch's default max_split_size: std::numeric_limits<size_t>::max().
const noLimit = math.MaxUint64

// intervals is kRoundUpPowerOfTwoIntervals: roundup_power2_divisions has
// one setting per power-of-2 interval from 1 MiB to 64 GiB.
const intervals = 16

// Config is the part of PYTORCH_CUDA_ALLOC_CONF that changes how much
// memory the native allocator reserves. The zero Config is PyTorch's
// default. Options are parsed as c10/core/AllocatorConfig.cpp
// (AcceleratorAllocatorConfig::parseArgs; before PyTorch 2.8
// c10/cuda/CUDAAllocatorConfig.cpp, CUDAAllocatorConfig::parseArgs) does.
type Config struct {
	// MaxSplitSize (max_split_size_mb, in bytes here): blocks of at least
	// this size are not split, and serve only requests of at least this
	// size that are within MaxNonSplitRounding of them. 0: no limit.
	MaxSplitSize uint64
	// MaxNonSplitRounding (max_non_split_rounding_mb, in bytes here): how
	// much larger than a request an oversized cached block may be. 0: the
	// default, kLargeBuffer (20 MiB).
	MaxNonSplitRounding uint64
	// RoundupPower2Divisions (roundup_power2_divisions): per power-of-2
	// interval of request size (index 0: up to 2 MiB, 1: 2-4 MiB, ...,
	// 15: from 32 GiB), the number of equal steps a request is rounded up
	// to; 0 or 1 keeps the 512 B rounding.
	RoundupPower2Divisions [intervals]uint64
	// ExpandableSegments (expandable_segments): one segment per pool and
	// stream that grows by pages (2 MiB small, 20 MiB large) instead of a
	// segment per cudaMalloc.
	ExpandableSegments bool
	// GarbageCollectionThreshold (garbage_collection_threshold, 0 < x < 1):
	// with a memory fraction set, reclaim cached segments once reserved
	// passes this share of it. 0: off.
	GarbageCollectionThreshold float64
}

func (c Config) maxSplit() uint64 {
	if c.MaxSplitSize == 0 {
		return noLimit
	}
	return c.MaxSplitSize
}

func (c Config) maxNonSplitRounding() uint64 {
	if c.MaxNonSplitRounding == 0 {
		return LargeBuffer
	}
	return c.MaxNonSplitRounding
}

func (c *Config) hasDivisions() bool { return c.RoundupPower2Divisions != [intervals]uint64{} }

// divisions is CUDAAllocatorConfig::roundup_power2_divisions(size).
func (c Config) divisions(size uint64) uint64 {
	log := 63 - leadingZeros(size)
	idx := 0
	if log > 20 {
		idx = log - 20
	}
	return c.RoundupPower2Divisions[min(idx, intervals-1)]
}

// IsDefault reports whether c is PyTorch's default configuration.
func (c Config) IsDefault() bool { return c == Config{} }

// String writes c in PYTORCH_CUDA_ALLOC_CONF syntax; ParseConf reads it
// back to c. The default configuration is "".
func (c Config) String() string {
	var parts []string
	if c.MaxSplitSize > 0 {
		parts = append(parts, fmt.Sprintf("max_split_size_mb:%d", c.MaxSplitSize>>20))
	}
	if c.MaxNonSplitRounding > 0 {
		parts = append(parts, fmt.Sprintf("max_non_split_rounding_mb:%d", c.MaxNonSplitRounding>>20))
	}
	if c.RoundupPower2Divisions != ([intervals]uint64{}) {
		d := c.RoundupPower2Divisions
		same := true
		for _, v := range d {
			same = same && v == d[0]
		}
		if same {
			parts = append(parts, fmt.Sprintf("roundup_power2_divisions:%d", d[0]))
		} else {
			var items []string
			for i, v := range d[:intervals-1] {
				items = append(items, fmt.Sprintf("%d:%d", 1<<i, v))
			}
			items = append(items, fmt.Sprintf(">:%d", d[intervals-1]))
			parts = append(parts, "roundup_power2_divisions:["+strings.Join(items, ",")+"]")
		}
	}
	if c.ExpandableSegments {
		parts = append(parts, "expandable_segments:True")
	}
	if c.GarbageCollectionThreshold > 0 {
		parts = append(parts, "garbage_collection_threshold:"+strconv.FormatFloat(c.GarbageCollectionThreshold, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

// ignoredKeys are options PyTorch accepts that do not change device
// memory (locking, pinned host memory, graph capture), with the kind of
// value each takes.
var ignoredKeys = map[string]string{
	"release_lock_on_cudamalloc":        "bool",
	"pinned_use_cuda_host_register":     "bool",
	"pinned_use_hip_host_register":      "bool",
	"pinned_num_register_threads":       "int",
	"pinned_reserve_segment_size_mb":    "int",
	"graph_capture_record_stream_reuse": "bool",
	"pinned_use_background_threads":     "bool",
}

// Keys lists the options ParseConf knows.
func Keys() []string {
	return []string{"backend", "max_split_size_mb", "max_non_split_rounding_mb", "roundup_power2_divisions",
		"expandable_segments", "garbage_collection_threshold", "release_lock_on_cudamalloc",
		"pinned_use_cuda_host_register", "pinned_num_register_threads", "pinned_reserve_segment_size_mb",
		"graph_capture_record_stream_reuse", "pinned_use_background_threads"}
}

// tokenize splits s as c10's ConfigTokenizer does: ',', ':', '[' and ']'
// are tokens of their own, spaces separate, anything else forms words.
func tokenize(s string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		switch r {
		case ',', ':', '[', ']':
			flush()
			toks = append(toks, string(r))
		case ' ', '\t', '\n', '\r':
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return toks
}

// ParseConf reads a PYTORCH_CUDA_ALLOC_CONF value, e.g.
// "expandable_segments:True,max_split_size_mb:128". Options that do not
// change device memory are accepted and ignored; backend:cudaMallocAsync is
// refused (memval models the native allocator only). Errors name the
// option, the value and what is allowed.
func ParseConf(s string) (Config, error) {
	var c Config
	t := tokenize(s)
	i := 0
	next := func() (string, bool) {
		if i >= len(t) {
			return "", false
		}
		i++
		return t[i-1], true
	}
	expect := func(key, want string) error {
		tok, ok := next()
		if !ok {
			return fmt.Errorf("%s: expected %q, got the end of the value", key, want)
		}
		if tok != want {
			return fmt.Errorf("%s: expected %q, got %q", key, want, tok)
		}
		return nil
	}
	value := func(key string) (string, error) {
		if err := expect(key, ":"); err != nil {
			return "", err
		}
		v, ok := next()
		if !ok || v == "," || v == ":" || v == "[" || v == "]" {
			return "", fmt.Errorf("%s: missing value after ':'", key)
		}
		return v, nil
	}
	seen := map[string]bool{}
	for i < len(t) {
		key, _ := next()
		if seen[key] {
			return Config{}, fmt.Errorf("%s: given twice; keep one", key)
		}
		seen[key] = true
		switch key {
		case "backend":
			v, err := value(key)
			if err != nil {
				return Config{}, err
			}
			switch v {
			case "native":
			case "cudaMallocAsync":
				return Config{}, fmt.Errorf("backend:cudaMallocAsync: not modelled (memval models the native caching allocator); use backend:native")
			default:
				return Config{}, fmt.Errorf("backend %q: unknown; use native or cudaMallocAsync", v)
			}
		case "max_split_size_mb", "max_non_split_rounding_mb":
			v, err := value(key)
			if err != nil {
				return Config{}, err
			}
			mb, err := strconv.ParseUint(v, 10, 64)
			if err != nil || mb > 1<<40 {
				return Config{}, fmt.Errorf("%s %q: want a whole number of MiB", key, v)
			}
			// PyTorch: "CachingAllocator option max_split_size_mb too small,
			// must be > 20" (kLargeBuffer / 1 MiB); likewise
			// max_non_split_rounding_mb.
			if mb <= LargeBuffer>>20 {
				return Config{}, fmt.Errorf("%s %d: too small, must be more than %d", key, mb, LargeBuffer>>20)
			}
			if key == "max_split_size_mb" {
				c.MaxSplitSize = mb << 20
			} else {
				c.MaxNonSplitRounding = mb << 20
			}
		case "garbage_collection_threshold":
			v, err := value(key)
			if err != nil {
				return Config{}, err
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || !(x > 0 && x < 1) {
				return Config{}, fmt.Errorf("garbage_collection_threshold %q: must be a number between 0.0 and 1.0, both excluded", v)
			}
			c.GarbageCollectionThreshold = x
		case "expandable_segments":
			v, err := value(key)
			if err != nil {
				return Config{}, err
			}
			switch v {
			case "True":
				c.ExpandableSegments = true
			case "False":
				c.ExpandableSegments = false
			default:
				return Config{}, fmt.Errorf("expandable_segments %q: use True or False", v)
			}
		case "roundup_power2_divisions":
			d, err := parseDivisions(expect, next)
			if err != nil {
				return Config{}, err
			}
			c.RoundupPower2Divisions = d
		default:
			kind, ok := ignoredKeys[key]
			if !ok {
				return Config{}, fmt.Errorf("unknown option %q; use one of %s", key, strings.Join(Keys(), ", "))
			}
			v, err := value(key)
			if err != nil {
				return Config{}, err
			}
			if kind == "bool" && v != "True" && v != "False" {
				return Config{}, fmt.Errorf("%s %q: use True or False", key, v)
			}
			if kind == "int" {
				if _, err := strconv.ParseUint(v, 10, 64); err != nil {
					return Config{}, fmt.Errorf("%s %q: want a whole number", key, v)
				}
			}
		}
		if i < len(t) {
			if err := expect(key, ","); err != nil {
				return Config{}, fmt.Errorf("%w (options are separated by commas)", err)
			}
			if i == len(t) {
				return Config{}, fmt.Errorf("a trailing comma after %s; remove it", key)
			}
		}
	}
	return c, nil
}

// parseDivisions reads roundup_power2_divisions after its key: ":N" for
// every interval, or ":[MB:N,...,>:N]" per interval from a power-of-2 size
// in MiB on (parseRoundUpPower2Divisions).
func parseDivisions(expect func(key, want string) error, next func() (string, bool)) ([intervals]uint64, error) {
	const key = "roundup_power2_divisions"
	var d [intervals]uint64
	if err := expect(key, ":"); err != nil {
		return d, err
	}
	pow2 := func(v string) (uint64, error) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || (n != 0 && n&(n-1) != 0) || n > 1<<20 {
			return 0, fmt.Errorf("%s %q: divisions must be a power of 2 (or 0 to disable)", key, v)
		}
		return n, nil
	}
	tok, ok := next()
	if !ok {
		return d, fmt.Errorf("%s: missing value after ':'", key)
	}
	if tok != "[" {
		n, err := pow2(tok)
		if err != nil {
			return d, err
		}
		for i := range d {
			d[i] = n
		}
		return d, nil
	}
	first, last := true, -1
	for {
		k, ok := next()
		if !ok {
			return d, fmt.Errorf("%s: missing ']'", key)
		}
		if k == "]" {
			if last < 0 {
				return d, fmt.Errorf("%s: empty list; give size_mb:divisions pairs", key)
			}
			return d, nil
		}
		if !first {
			if k != "," {
				return d, fmt.Errorf("%s: expected ',' or ']', got %q", key, k)
			}
			if k, ok = next(); !ok {
				return d, fmt.Errorf("%s: missing ']'", key)
			}
		}
		if err := expect(key, ":"); err != nil {
			return d, err
		}
		v, ok := next()
		if !ok {
			return d, fmt.Errorf("%s: missing divisions after %q", key, k)
		}
		n, err := pow2(v)
		if err != nil {
			return d, err
		}
		if k == ">" {
			for i := last + 1; i < intervals; i++ {
				d[i] = n
			}
			last = intervals - 1
		} else {
			mb, err := strconv.ParseUint(k, 10, 64)
			if err != nil || mb == 0 || mb&(mb-1) != 0 {
				return d, fmt.Errorf("%s: interval %q must be a power of 2 MiB", key, k)
			}
			idx := min(63-leadingZeros(mb), intervals-1)
			if idx <= last {
				return d, fmt.Errorf("%s: interval %q is out of order; list sizes in increasing order", key, k)
			}
			if first {
				for i := 0; i < idx; i++ {
					d[i] = n
				}
			}
			d[idx] = n
			last = idx
		}
		first = false
	}
}
