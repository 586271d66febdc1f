package profiler

import (
	"bufio"
	"os/exec"
	"testing"
)

func TestParseRankEnviron(t *testing.T) {
	for _, c := range []struct {
		env  string
		want RankInfo
		ok   bool
	}{
		{"RANK=3\x00LOCAL_RANK=1\x00WORLD_SIZE=16\x00", RankInfo{3, 1, 16}, true},
		{"PATH=/bin\x00RANK=0\x00", RankInfo{0, -1, 0}, true},
		{"LOCAL_RANK=2\x00WORLD_SIZE=8\x00", RankInfo{-1, 2, 8}, false},
		{"RANK=x\x00", RankInfo{-1, -1, 0}, false},
		{"RANK=-1\x00", RankInfo{-1, -1, 0}, false},
		{"", RankInfo{-1, -1, 0}, false},
		{"RANKS=1\x00XRANK=2\x00", RankInfo{-1, -1, 0}, false},
	} {
		got, ok := ParseRankEnviron([]byte(c.env))
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRankEnviron(%q) = %+v, %v; want %+v, %v", c.env, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseRankEnviron(f *testing.F) {
	f.Add([]byte("RANK=3\x00LOCAL_RANK=1\x00WORLD_SIZE=16\x00"))
	f.Add([]byte("RANK=\x00=\x00"))
	f.Fuzz(func(t *testing.T, env []byte) {
		info, ok := ParseRankEnviron(env)
		if ok != (info.Rank >= 0) || info.LocalRank < -1 || info.WorldSize < 0 {
			t.Errorf("ParseRankEnviron(%q) = %+v, %v", env, info, ok)
		}
	})
}

// TestProcEnviron reads a real child's rank from /proc/PID/environ.
func TestProcEnviron(t *testing.T) {
	// The shell prints once it runs, so its environment is then its own
	// (before exec, a child's is its parent's). It does not exec again:
	// while an exec replaces its memory, /proc/PID/environ reads empty.
	cmd := exec.Command("/bin/sh", "-c", "echo ready; sleep 5")
	cmd.Env = []string{"RANK=5", "LOCAL_RANK=1", "WORLD_SIZE=8"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("no shell to start: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	env, err := procEnviron{}.Environ(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := ParseRankEnviron(env); !ok || info != (RankInfo{5, 1, 8}) {
		t.Errorf("child's rank: %+v, %v", info, ok)
	}
}
