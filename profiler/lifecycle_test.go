package profiler

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memval/memval/profiler/schema"
)

// helperMemval runs Run in this process, as memval would, on a fake
// device: MEMVAL_HELPER_OUT is the run's folder, MEMVAL_HELPER_CMD the
// command (for sh -c), MEMVAL_HELPER_FSIZE a file size limit in bytes to
// set first. It prints the result as JSON on one line prefixed "result:"
// (and "fg-restored:" for the terminal test), and exits 1 when Run fails.
func helperMemval() {
	if v := os.Getenv("MEMVAL_HELPER_FSIZE"); v != "" {
		n, _ := strconv.ParseUint(v, 10, 64)
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: n, Max: n}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
	}
	res, err := Run(context.Background(), RunOptions{
		Device: newFakeDevice(1, 80<<30), Command: []string{"sh", "-c", os.Getenv("MEMVAL_HELPER_CMD")},
		OutDir: os.Getenv("MEMVAL_HELPER_OUT"), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		GPU: -1, Interval: 200 * time.Microsecond,
	})
	if res != nil {
		b, _ := json.Marshal(res)
		fmt.Printf("result:%s\n", b)
	}
	if pg, perr := unix.IoctlGetInt(0, unix.TIOCGPGRP); perr == nil {
		fmt.Printf("fg-restored:%v\n", pg == unix.Getpgrp())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "memval:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperCmd is the test binary as memval running script.
func helperCmd(t *testing.T, script, out string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(exe)
	c.Env = append(append(os.Environ(), helperEnv+"=memval", "MEMVAL_HELPER_CMD="+script, "MEMVAL_HELPER_OUT="+out), env...)
	return c
}

// procState is a process's state letter from /proc, "" when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// gone reports whether pid has ended (no longer there, or a zombie),
// waiting at most 5 s for it.
func gone(pid int) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s := procState(pid); s == "" || s == "Z" || s == "X" {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// pidsFrom reads the PIDs a script printed as "pid:N" lines.
func pidsFrom(out string) []int {
	var pids []int
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "pid:"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// The child dies with memval: SIGKILL memval (the test binary acting as
// it) and the command, a real sleep, goes too.
func TestRunChildDiesWithMemval(t *testing.T) {
	c := helperCmd(t, "echo pid:$$; exec sleep 30", t.TempDir())
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	pids := pidsFrom(line)
	if err != nil || len(pids) != 1 {
		c.Process.Kill()
		c.Wait()
		t.Fatalf("got %q, %v from the helper; want its child's pid", line, err)
	}
	c.Process.Kill()
	c.Wait()
	if !gone(pids[0]) {
		syscall.Kill(pids[0], syscall.SIGKILL)
		t.Fatalf("the command (pid %d) outlived memval's SIGKILL", pids[0])
	}
}

// One SIGINT: the tree gets it, then SIGTERM after the grace period, and
// every descendant is ended and listed in KilledProcesses; a child that
// ignores SIGINT does not keep memval waiting.
func TestRunInterruptEndsWholeTree(t *testing.T) {
	tests := []struct {
		name, script string
		wantKilled   int
	}{
		// sh's background jobs ignore SIGINT; sh itself waits.
		{"background sleeps", "sleep 30 & echo pid:$!; sleep 30 & echo pid:$!; wait", 2},
		{"ignores SIGINT", `trap "" INT; echo pid:$$; sleep 30 & echo pid:$!; wait`, 2},
		{"new session", `setsid sleep 30 & echo pid:$!; wait`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 2)
			var res *schema.Result
			var out string
			done := make(chan struct{})
			go func() {
				defer close(done)
				res, _, out, _ = runSh(t, tc.script, func(o *RunOptions) {
					o.Signals, o.InterruptGrace = sigs, 300*time.Millisecond
					o.Stdout = &lineNotifier{w: o.Stdout.(*syncBuffer), want: "pid:", n: tc.wantKilled, seen: sigs}
				})
			}()
			<-done
			pids := pidsFrom(out)
			if len(pids) != tc.wantKilled {
				t.Fatalf("got stdout %q, want the sleeps' pids", out)
			}
			for _, p := range pids {
				if !gone(p) {
					syscall.Kill(p, syscall.SIGKILL)
					t.Errorf("pid %d still running after the run", p)
				}
			}
			if res.Summary.Status != schema.StatusInterrupted {
				t.Errorf("got status %q, want interrupted", res.Summary.Status)
			}
			killed := map[int]schema.KilledProcess{}
			for _, k := range res.KilledProcesses {
				killed[k.PID] = k
			}
			for _, p := range pids {
				k, ok := killed[p]
				if !ok || !strings.Contains(k.Command, "sleep 30") || (k.Signal != "SIGTERM" && k.Signal != "SIGKILL") {
					t.Errorf("pid %d: got %+v in killed_processes %+v, want sleep 30 with SIGTERM or SIGKILL", p, k, res.KilledProcesses)
				}
			}
		})
	}
}

// lineNotifier passes output to w and sends SIGINT on seen once n lines
// starting with want have passed and each process they name runs its
// command (not the shell's fork that has yet to set up its signals and
// exec, which a SIGINT would end before memval has anything to do), as a
// user who waits for the workload to be up would.
type lineNotifier struct {
	w    *syncBuffer
	want string
	n    int
	seen chan os.Signal
	sent bool
}

func (l *lineNotifier) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if !l.sent && strings.Count(l.w.String(), l.want) >= l.n {
		l.sent = true
		for _, pid := range pidsFrom(l.w.String()) {
			waitExec(pid, "sleep", 5*time.Second)
		}
		l.seen <- syscall.SIGINT
	}
	return n, err
}

// waitExec waits, up to limit, until process pid runs command name.
func waitExec(pid int, name string, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && strings.TrimSpace(string(b)) == name {
			return
		}
	}
}

// A descendant still running when the main process has exited is ended
// after the grace period, not left behind.
func TestRunEndsOrphansOnExit(t *testing.T) {
	res, _, out, _ := runSh(t, "sleep 30 >/dev/null 2>&1 & echo pid:$!; exit 0", func(o *RunOptions) { o.Grace = 100 * time.Millisecond })
	pids := pidsFrom(out)
	if len(pids) != 1 {
		t.Fatalf("got stdout %q, want the sleep's pid", out)
	}
	if !gone(pids[0]) {
		syscall.Kill(pids[0], syscall.SIGKILL)
		t.Fatalf("orphan %d still running after the run", pids[0])
	}
	if len(res.KilledProcesses) != 1 || res.KilledProcesses[0].PID != pids[0] || res.KilledProcesses[0].Signal != "SIGTERM" {
		t.Errorf("got killed_processes %+v, want the sleep, by SIGTERM", res.KilledProcesses)
	}
	if res.Summary.Status != schema.StatusOK {
		t.Errorf("got status %q, want ok (the main process exited 0)", res.Summary.Status)
	}
}

// A file size limit (RLIMIT_FSIZE) cuts the trace: sampling stops, the
// result says trace_incomplete with the error and the time covered, and Run
// fails.
func TestRunTraceWriteErrorIsReported(t *testing.T) {
	dir := t.TempDir()
	c := helperCmd(t, "sleep 1", dir, "MEMVAL_HELPER_FSIZE=16384")
	out, err := c.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("helper exited with %v, want exit status 1 (not killed by SIGXFSZ)", err)
	}
	var res *schema.Result
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "result:"); ok {
			res = new(schema.Result)
			if err := json.Unmarshal([]byte(v), res); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res == nil {
		t.Fatalf("no result in %q", out)
	}
	s := res.Summary
	if s.Status != schema.StatusTraceIncomplete || !strings.Contains(s.TraceError, "file too large") {
		t.Errorf("got status %q, trace error %q; want %s with EFBIG's message", s.Status, s.TraceError, schema.StatusTraceIncomplete)
	}
	if s.TraceCoveredSeconds <= 0 || s.TraceCoveredSeconds >= s.DurationSeconds {
		t.Errorf("got %.3f s covered of %.3f s, want a part of the run", s.TraceCoveredSeconds, s.DurationSeconds)
	}
	onDisk, err := schema.ReadResult(filepath.Join(dir, schema.ResultFile))
	if err != nil || onDisk.Summary != s {
		t.Errorf("result.json: got %+v, %v; want the returned summary", onDisk, err)
	}
}

// openPTY opens a pseudo-terminal pair (master, slave).
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pty slave: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// With memval in the terminal's foreground, the command gets the terminal:
// it reads a line from it (no SIGTTIN), and memval takes the terminal back.
func TestRunGivesCommandTheTerminal(t *testing.T) {
	m, s := openPTY(t)
	c := helperCmd(t, `read line; echo "got:$line"`, t.TempDir())
	c.Stdin, c.Stdout, c.Stderr = s, s, s
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	// A guard, not a measurement: a command stopped by SIGTTIN would keep
	// the helper waiting for ever.
	guard := time.AfterFunc(20*time.Second, func() { c.Process.Kill() })
	defer guard.Stop()
	if _, err := m.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), "fg-restored:") || !strings.Contains(out.String()[strings.Index(out.String(), "fg-restored:"):], "\n") {
		n, err := m.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	err := <-waited
	got := out.String()
	if !strings.Contains(got, "got:hello") {
		t.Errorf("the command did not read the terminal (helper: %v); terminal output:\n%s", err, got)
	}
	if !strings.Contains(got, "fg-restored:true") {
		t.Errorf("memval's group did not get the terminal back; terminal output:\n%s", got)
	}
	if err != nil {
		t.Errorf("helper: %v", err)
	}
}
