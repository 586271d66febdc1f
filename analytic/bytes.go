package analytic

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Binary and decimal byte units.
const (
	KiB uint64 = 1 << 10
	MiB uint64 = 1 << 20
	GiB uint64 = 1 << 30
	TiB uint64 = 1 << 40

	KB uint64 = 1e3
	MB uint64 = 1e6
	GB uint64 = 1e9
	TB uint64 = 1e12
)

// MaxBytes is the largest byte count memval computes with (2^62, 4 EiB).
// Every formula returns ErrOverflow rather than a figure above it, so sums
// of a few such figures still fit in a uint64.
const MaxBytes uint64 = 1 << 62

// ErrOverflow is returned (wrapped) when a size exceeds MaxBytes.
var ErrOverflow = errors.New("size exceeds 2^62 bytes")

var byteUnits = []struct {
	name string
	size uint64
}{
	{"b", 1},
	{"kib", KiB}, {"mib", MiB}, {"gib", GiB}, {"tib", TiB},
	{"kb", KB}, {"mb", MB}, {"gb", GB}, {"tb", TB},
}

// ParseBytes reads a size such as "80GiB", "80 GB", "1.5TiB", "512MiB" or
// "1024" (bytes). Binary units (KiB, MiB, GiB, TiB) are powers of 1024 and
// decimal units (kB, MB, GB, TB) powers of 1000; case does not matter. A
// bare K, M, G or T is refused as ambiguous. Fractions are allowed and the
// result is rounded to the nearest byte. Negative, non-finite and sizes
// above MaxBytes are errors.
func ParseBytes(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size; write e.g. 80GiB or 80GB")
	}
	i := len(t)
	for i > 0 {
		c := t[i-1]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			i--
			continue
		}
		break
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(t[i:])
	mult := uint64(0)
	if unit == "" {
		mult = 1
	}
	for _, u := range byteUnits {
		if unit == u.name {
			mult = u.size
		}
	}
	if mult == 0 {
		switch unit {
		case "k", "m", "g", "t":
			return 0, fmt.Errorf("size %q: unit %q is ambiguous; write %siB (binary) or %sB (decimal)", s, t[i:], strings.ToUpper(unit), strings.ToUpper(unit))
		}
		return 0, fmt.Errorf("size %q: unknown unit %q; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB", s, t[i:])
	}
	if num == "" {
		return 0, fmt.Errorf("size %q: no number before the unit", s)
	}
	if n, err := strconv.ParseUint(num, 10, 64); err == nil {
		hi, lo := bits.Mul64(n, mult)
		if hi != 0 || lo > MaxBytes {
			return 0, fmt.Errorf("size %q: %w", s, ErrOverflow)
		}
		return lo, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || strings.ContainsAny(num, "xXpP_") || strings.EqualFold(num, "inf") || strings.EqualFold(num, "nan") {
		return 0, fmt.Errorf("size %q: %q is not a number", s, num)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Errorf("size %q: must be a finite, non-negative number", s)
	}
	b := math.Round(f * float64(mult))
	if b > float64(MaxBytes) {
		return 0, fmt.Errorf("size %q: %w", s, ErrOverflow)
	}
	return uint64(b), nil
}

// FormatBytes prints b in binary units with one decimal and the unit
// named: "79.6 GiB", "512.0 MiB", "3.0 KiB", "17 B".
func FormatBytes(b uint64) string { return formatUnits(b, binaryUnits) }

// FormatBytesDecimal prints b in decimal units with one decimal and the
// unit named: "85.5 GB", "512.0 MB", "3.0 kB", "17 B".
func FormatBytesDecimal(b uint64) string { return formatUnits(b, decimalUnits) }

// byteUnit is a unit of a byte formatter: sizes from min on are printed in
// size-sized units.
type byteUnit struct {
	min, size uint64
	name      string
}

// The units, largest first. Terabytes start at a thousand of them, so that
// GPU-sized figures stay in GiB/GB.
var (
	binaryUnits  = []byteUnit{{TiB * 1000, TiB, "TiB"}, {GiB, GiB, "GiB"}, {MiB, MiB, "MiB"}, {KiB, KiB, "KiB"}}
	decimalUnits = []byteUnit{{TB * 1000, TB, "TB"}, {GB, GB, "GB"}, {MB, MB, "MB"}, {KB, KB, "kB"}}
)

// formatUnits prints b in the first of units it reaches, with one decimal.
func formatUnits(b uint64, units []byteUnit) string {
	for _, u := range units {
		if b >= u.min {
			return strconv.FormatFloat(float64(b)/float64(u.size), 'f', 1, 64) + " " + u.name
		}
	}
	return strconv.FormatUint(b, 10) + " B"
}
