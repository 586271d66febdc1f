package schema

import (
	"errors"
	"fmt"
	"strings"
)

// Bases of a published memory figure: which counter the source read.
const (
	BasisAllocated = "max_memory_allocated" // torch.cuda.max_memory_allocated (or peak active bytes): live tensors
	BasisReserved  = "max_memory_reserved"  // torch.cuda.max_memory_reserved: the caching allocator's segments
	BasisNVML      = "nvml_used"            // nvidia-smi / NVML used memory: everything on the device
	BasisNotStated = "not_stated"           // the source does not say, and nothing it links to tells
)

// Bases lists the bases in the order reports print them.
func Bases() []string {
	return []string{BasisAllocated, BasisReserved, BasisNVML, BasisNotStated}
}

// Evidence of a condition or a basis.
const (
	Stated   = "stated"   // the source says it in so many words
	Inferred = "inferred" // read from the source's code, config or context; the note says how
)

// Published marks a result.json that records a figure someone else
// measured and published, rather than a run of memval. The figure itself
// is in the field that matches Basis (framework.max_allocated,
// framework.max_reserved or summary.peak_device_bytes) and, for every
// basis, in PeakBytes.
type Published struct {
	Source Source `json:"source"`
	// Basis is the counter the figure comes from (a Basis* constant) and
	// BasisEvidence whether the source states it or it was inferred.
	Basis         string `json:"basis"`
	BasisEvidence string `json:"basis_evidence"`
	Metric        string `json:"metric"`     // the figure's name as the source prints it, e.g. "Peak Memory per GPU"
	Figure        string `json:"figure"`     // the figure as printed, e.g. "18.9 GiB", "OOM"
	PeakBytes     uint64 `json:"peak_bytes"` // the figure in bytes, with the unit the source uses (GB = 1e9, GiB = 2^30); 0 for OOM
	// NotEvaluated, when set, is why memval cannot predict this
	// measurement yet (the missing feature: "lora", "4-bit weights", ...);
	// the run is kept for the roadmap and left out of the error statistics.
	NotEvaluated string `json:"not_evaluated,omitempty"`
}

// Source says where a published figure comes from.
type Source struct {
	Name       string      `json:"name"`                 // short name of the source, the folder under scenarios/published
	Repository string      `json:"repository,omitempty"` // owner/name on GitHub, when it is there
	Path       string      `json:"path,omitempty"`       // the file in Repository
	URL        string      `json:"url,omitempty"`        // a web page, issue or pull request
	Commit     string      `json:"commit,omitempty"`     // the commit the file was read at
	Date       string      `json:"date,omitempty"`       // when it was published (YYYY-MM-DD), when there is no commit
	Quote      string      `json:"quote"`                // the table row or sentence the figure is in
	Conditions []Condition `json:"conditions"`
}

// Condition is one setting of the measured run and how it is known.
type Condition struct {
	Name     string `json:"name"` // gpu, model, batch, seq, precision, optimizer, checkpointing, attention, ...
	Value    string `json:"value"`
	Evidence string `json:"evidence"`       // Stated or Inferred
	Note     string `json:"note,omitempty"` // for an inferred condition: from where
}

// Check reports the first thing wrong with p: a missing source, an unknown
// basis or evidence, a figure missing from the field its basis names.
// Errors name the JSON field.
func (p *Published) Check(r *Result) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("field published.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if p.Source.Name == "" {
		bad("source.name", "missing; name the source")
	}
	if p.Source.Quote == "" {
		bad("source.quote", "missing; quote the table cell or sentence the figure is in")
	}
	if p.Source.Repository == "" && p.Source.URL == "" {
		bad("source", "neither repository nor url; say where the figure was published")
	}
	if p.Source.Commit == "" && p.Source.Date == "" {
		bad("source", "neither commit nor date; say which version was read")
	}
	known := false
	for _, b := range Bases() {
		known = known || p.Basis == b
	}
	if !known {
		bad("basis", "%q: want one of %s", p.Basis, strings.Join(Bases(), ", "))
	}
	if p.BasisEvidence != Stated && p.BasisEvidence != Inferred {
		bad("basis_evidence", "%q: want stated or inferred", p.BasisEvidence)
	}
	for i, c := range p.Source.Conditions {
		if c.Name == "" {
			bad(fmt.Sprintf("source.conditions[%d].name", i), "missing")
		}
		if c.Evidence != Stated && c.Evidence != Inferred {
			bad(fmt.Sprintf("source.conditions[%d].evidence", i), "%q: want stated or inferred", c.Evidence)
		}
	}
	oom := r != nil && (r.Summary.OOM || r.Summary.Status == StatusOOM)
	if p.PeakBytes == 0 && !oom {
		bad("peak_bytes", "0 for a run that did not run out of memory")
	}
	if r != nil && p.PeakBytes > 0 {
		var got uint64
		var field string
		switch p.Basis {
		case BasisAllocated:
			field = "framework.max_allocated"
			if r.Framework != nil {
				got = r.Framework.MaxAllocated
			}
		case BasisReserved:
			field = "framework.max_reserved"
			if r.Framework != nil {
				got = r.Framework.MaxReserved
			}
		case BasisNVML:
			field, got = "summary.peak_device_bytes", r.Summary.PeakDeviceBytes
		}
		if field != "" && got != p.PeakBytes {
			bad("peak_bytes", "%d, but %s (the field basis %s names) holds %d; they must agree", p.PeakBytes, field, p.Basis, got)
		}
		if r.Simulated {
			errs = append(errs, errors.New("field simulated: true on a published measurement of a real GPU"))
		}
	}
	return errors.Join(errs...)
}
