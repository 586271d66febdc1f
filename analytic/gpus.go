package analytic

import (
	"fmt"
	"strings"
)

// GPU is an accelerator model and the memory it offers.
//
// Bytes is the total memory the driver reports (nvidia-smi / NVML
// memory.total, or rocm-smi's VRAM total for AMD), which is what a process
// can at best fill; it is a little less than the marketed figure for most
// NVIDIA parts because the driver keeps some memory for itself. Nominal is
// the marketed size. Source says which of the two Bytes records.
type GPU struct {
	Name    string `json:"name"`        // memval's key, e.g. "h100-80gb"
	Model   string `json:"model"`       // the vendor's name
	Bytes   uint64 `json:"total_bytes"` // usable total memory
	Nominal string `json:"nominal"`     // marketed size, e.g. "80 GB"
	Source  string `json:"source"`      // where Bytes comes from
}

const (
	srcNvidiaSMI = "memory.total as nvidia-smi / NVML report it"
	srcROCm      = "VRAM total as rocm-smi reports it"
)

// gpus is the table, in the order GPUs lists it.
var gpus = []GPU{
	{"h100-80gb", "NVIDIA H100 80GB HBM3 (SXM5)", 81559 * MiB, "80 GB", srcNvidiaSMI},
	{"h100-94gb", "NVIDIA H100 NVL", 95830 * MiB, "94 GB", srcNvidiaSMI},
	{"h200", "NVIDIA H200 (SXM)", 143771 * MiB, "141 GB", srcNvidiaSMI},
	{"a100-40gb", "NVIDIA A100 40GB (SXM4/PCIe)", 40960 * MiB, "40 GB", srcNvidiaSMI},
	{"a100-80gb", "NVIDIA A100 80GB (SXM4/PCIe)", 81920 * MiB, "80 GB", srcNvidiaSMI},
	{"l4", "NVIDIA L4", 23034 * MiB, "24 GB", srcNvidiaSMI},
	{"l40s", "NVIDIA L40S", 46068 * MiB, "48 GB", srcNvidiaSMI},
	{"a10g", "NVIDIA A10G", 23028 * MiB, "24 GB", srcNvidiaSMI},
	{"v100-16gb", "NVIDIA Tesla V100 16GB (SXM2/PCIe)", 16160 * MiB, "16 GB", srcNvidiaSMI},
	{"v100-32gb", "NVIDIA Tesla V100 32GB (SXM2/PCIe)", 32510 * MiB, "32 GB", srcNvidiaSMI},
	{"rtx-4090", "NVIDIA GeForce RTX 4090", 24564 * MiB, "24 GB", srcNvidiaSMI},
	{"rtx-3090", "NVIDIA GeForce RTX 3090", 24576 * MiB, "24 GB", srcNvidiaSMI},
	{"t4", "NVIDIA Tesla T4", 15360 * MiB, "16 GB", srcNvidiaSMI},
	{"mi300x", "AMD Instinct MI300X", 205822885888, "192 GB", srcROCm},
}

// gpuAliases maps other common spellings to table names.
var gpuAliases = []struct{ alias, name string }{
	{"h100", "h100-80gb"}, {"h100-sxm", "h100-80gb"}, {"h100-nvl", "h100-94gb"},
	{"h200-141gb", "h200"}, {"a100", "a100-80gb"}, {"v100", "v100-32gb"},
	{"4090", "rtx-4090"}, {"3090", "rtx-3090"},
}

// GPUs returns the table of known GPUs (a copy).
func GPUs() []GPU {
	return append([]GPU(nil), gpus...)
}

// gpuNameDashes makes "_" and " " in a GPU name "-" (made once: a
// Replacer builds its tables at first use).
var gpuNameDashes = strings.NewReplacer("_", "-", " ", "-")

// GPUByName finds a GPU by its table name or a common alias, ignoring case
// and treating "_" and " " as "-". Unknown names are an error listing the
// choices.
func GPUByName(name string) (GPU, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	key = gpuNameDashes.Replace(key)
	for _, al := range gpuAliases {
		if key == al.alias {
			key = al.name
		}
	}
	for _, g := range gpus {
		if g.Name == key {
			return g, nil
		}
	}
	names := make([]string, len(gpus))
	for i, g := range gpus {
		names[i] = g.Name
	}
	return GPU{}, fmt.Errorf("unknown GPU %q; use one of %s, or give --budget SIZE", name, strings.Join(names, ", "))
}
