package analytic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ContextFile is a CUDA context measured on a real GPU, as `memval devices
// --measure-context --write FILE` writes it and `memval estimate --context
// FILE` reads it: a bare process (torch.cuda.init() and a 1-element
// tensor) raised the GPU's NVML used memory from UsedBeforeBytes to
// UsedAfterBytes, of which TorchReservedBytes are the allocator's segment
// for the tensor; the rest is the context.
type ContextFile struct {
	ContextBytes       uint64 `json:"cuda_context_bytes"`
	GPU                string `json:"gpu"`
	UUID               string `json:"uuid,omitempty"`
	Driver             string `json:"driver,omitempty"`
	CUDA               string `json:"cuda,omitempty"` // torch.version.cuda: the runtime torch was built with
	Torch              string `json:"torch"`
	ModuleLoading      string `json:"module_loading,omitempty"` // CUDA_MODULE_LOADING as torch set it
	UsedBeforeBytes    uint64 `json:"used_before_bytes"`
	UsedAfterBytes     uint64 `json:"used_after_bytes"`
	TorchReservedBytes uint64 `json:"torch_reserved_bytes"`
	MeasuredAt         string `json:"measured_at,omitempty"` // RFC 3339
}

// Check reports whether c's figures agree with each other.
func (c ContextFile) Check() error {
	switch {
	case c.UsedAfterBytes < c.UsedBeforeBytes || c.UsedAfterBytes-c.UsedBeforeBytes < c.TorchReservedBytes:
		return fmt.Errorf("used_after_bytes %d is below used_before_bytes %d plus torch_reserved_bytes %d", c.UsedAfterBytes, c.UsedBeforeBytes, c.TorchReservedBytes)
	case c.ContextBytes != c.UsedAfterBytes-c.UsedBeforeBytes-c.TorchReservedBytes:
		return fmt.Errorf("cuda_context_bytes %d is not used_after_bytes - used_before_bytes - torch_reserved_bytes = %d", c.ContextBytes, c.UsedAfterBytes-c.UsedBeforeBytes-c.TorchReservedBytes)
	case c.ContextBytes == 0:
		return errors.New("cuda_context_bytes is 0: a CUDA context takes hundreds of MiB")
	case c.GPU == "":
		return errors.New("gpu is empty: the file must say which GPU it measured")
	}
	return nil
}

// Figure is the context as a device-level figure, citing path.
func (c ContextFile) Figure(path string) Figure {
	src := fmt.Sprintf("%s: memval devices --measure-context on %s (driver %s, torch %s, CUDA %s, module loading %s)",
		path, c.GPU, orDash(c.Driver), c.Torch, orDash(c.CUDA), orDash(c.ModuleLoading))
	if c.MeasuredAt != "" {
		src += " at " + c.MeasuredAt
	}
	return Figure{c.ContextBytes, "measured", src,
		"NVML used memory of the GPU while a process held torch.cuda.init() and a 1-element tensor, less that tensor's reserved segment, less the GPU's used memory before"}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ReadContextFile reads and checks a context file.
func ReadContextFile(path string) (ContextFile, error) {
	var c ContextFile
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("context file: %w", err)
	}
	if c, err = ParseContextFile(data); err != nil {
		return c, fmt.Errorf("context file %s: %w", path, err)
	}
	return c, nil
}

// ParseContextFile reads a context file's JSON (unknown fields are errors)
// and checks it.
func ParseContextFile(data []byte) (ContextFile, error) {
	var c ContextFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("not a context file written by memval devices --measure-context --write: %w", err)
	}
	if dec.More() {
		return c, errors.New("more than one JSON value")
	}
	if err := c.Check(); err != nil {
		return c, err
	}
	return c, nil
}

// ParseContextOption reads --context: a size ("520MiB", given) or the path
// of a context file (measured).
func ParseContextOption(v string) (Figure, error) {
	if b, err := ParseBytes(v); err == nil {
		return Figure{b, "given", "--context", ""}, nil
	} else if _, statErr := os.Stat(v); statErr != nil || strings.TrimSpace(v) == "" {
		return Figure{}, fmt.Errorf("%q is neither a size (e.g. 520MiB: %v) nor a context file written by memval devices --measure-context --write", v, err)
	}
	c, err := ReadContextFile(v)
	if err != nil {
		return Figure{}, err
	}
	return c.Figure(v), nil
}
