package sim

import (
	"fmt"

	"github.com/memval/memval/profiler"
)

// RankSkewBytes is how much more rank r holds than rank 0 in a simulated
// multi-rank job (r x 16 MiB): a stand-in for what differs between real
// ranks (NCCL buffers, the pipeline stage), so that per-rank attribution
// can be checked.
const RankSkewBytes = 16 << 20

var _ profiler.EnvironSource = (*Device)(nil)

// Environ is the environment torchrun would give the simulated rank with
// that PID (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, NUL-separated);
// an error for any other PID. With one rank the process has no RANK.
func (s *Device) Environ(pid int) ([]byte, error) {
	n := max(s.cfg.Ranks, 1)
	r := pid - s.cfg.PID
	if r < 0 || r >= n {
		return nil, fmt.Errorf("sim: no process %d", pid)
	}
	if s.cfg.Ranks <= 1 {
		return []byte("PATH=/usr/bin\x00"), nil
	}
	return fmt.Appendf(nil, "PATH=/usr/bin\x00RANK=%d\x00LOCAL_RANK=%d\x00WORLD_SIZE=%d\x00LOCAL_WORLD_SIZE=%d\x00", r, r, n, n), nil
}
