package profiler

import (
	"fmt"
	"strconv"
	"strings"
)

// CheckGPU returns an error when gpu (>= 0) is not one of gpus' indices;
// -1 (the busiest) is always fine. The error lists the indices there are.
func CheckGPU(gpus []GPU, gpu int) error {
	if gpu == -1 {
		return nil
	}
	idx := make([]string, len(gpus))
	for i, g := range gpus {
		if g.Index == gpu {
			return nil
		}
		idx[i] = strconv.Itoa(g.Index)
	}
	return fmt.Errorf("GPU %d does not exist: the device has %d GPU(s), indices %s (or -1 for the busiest)", gpu, len(gpus), strings.Join(idx, ", "))
}
