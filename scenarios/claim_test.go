package scenarios

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

// Two sweeps into one folder at once: each scenario runs exactly once,
// every result is complete, and each sweep reports all of them.
func TestSweepsSharingAFolderSplitTheScenarios(t *testing.T) {
	out := t.TempDir()
	specs := ciSpecs(t, 4)
	var mu sync.Mutex
	runs := map[string]int{}
	progress := func(u SweepUpdate) {
		if u.Entry.Status == StatusRunning {
			mu.Lock()
			runs[u.Entry.Name]++
			mu.Unlock()
		}
	}
	var reps [2]*SweepReport
	var errs [2]error
	var wg sync.WaitGroup
	for k := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[k], errs[k] = Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim(), Progress: progress})
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Fatalf("sweep %d: %v", k, err)
		}
	}
	for _, s := range specs {
		if runs[s.Name] != 1 {
			t.Errorf("%s: run %d times by the two sweeps, want once", s.Name, runs[s.Name])
		}
		if _, _, err := Complete(filepath.Join(out, s.Name)); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	if got := reps[0].Ran + reps[1].Ran; got != len(specs) {
		t.Errorf("the sweeps ran %d + %d scenarios, want %d in all", reps[0].Ran, reps[1].Ran, len(specs))
	}
	for k, rep := range reps {
		for _, e := range rep.Entries {
			if e.Result == nil || e.Verdict == nil {
				t.Errorf("sweep %d: %s has no result in its report", k, e.Name)
			}
		}
	}
}

// A resumed sweep reruns every scenario whose result is not whole and
// valid, and skips the others.
func TestSweepRerunsIncompleteResults(t *testing.T) {
	out := t.TempDir()
	specs := ciSpecs(t, 6)
	if _, err := Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim()}); err != nil {
		t.Fatal(err)
	}
	file := func(name, f string) string { return filepath.Join(out, name, f) }
	edit := func(path string, fn func([]byte) []byte) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, fn(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// sa stays complete.
	edit(file("sb", profiler.TraceFile), func(b []byte) []byte { return b[:len(b)-3] }) // cut mid-row
	edit(file("sc", profiler.TraceFile), func(b []byte) []byte { return b[:len(profiler.TraceHeader)+1] })
	edit(file("sd", schema.ResultFile), func(b []byte) []byte { return b[:len(b)/2] })
	edit(file("se", schema.ResultFile), func(b []byte) []byte {
		return []byte(strings.Replace(string(b), `"status": "ok"`, `"status": "trace_incomplete"`, 1))
	})
	edit(file("sf", profiler.TraceFile), func(b []byte) []byte {
		return []byte(strings.Replace(string(b), "\n", "\nnot,a,row,,,,\n", 2))
	})
	var started []string
	rep, err := Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim(), Progress: func(u SweepUpdate) {
		if u.Entry.Status == StatusRunning {
			started = append(started, u.Entry.Name)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(started, ","); got != "sb,sc,sd,se,sf" || rep.Skipped != 1 {
		t.Errorf("got reruns %s and %d skipped, want sb,sc,sd,se,sf and 1", got, rep.Skipped)
	}
	for _, s := range specs {
		if _, _, err := Complete(filepath.Join(out, s.Name)); err != nil {
			t.Errorf("%s after the rerun: %v", s.Name, err)
		}
	}
}

// holdClaim makes a real process (sh, flock(1), then sleep) hold dir's
// claim until killed.
func holdClaim(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// One process holds the lock: the shell opens the file, locks it and
	// becomes sleep, which keeps the descriptor.
	c := exec.Command("sh", "-c", `exec 9>"$1" && flock 9 && exec sleep 60`, "sh", filepath.Join(dir, ClaimFile))
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cl, err := claimScenario(dir)
		if errors.Is(err, errClaimed) {
			return c
		}
		cl.release()
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("flock(1) did not take the claim: %v", err)
		}
	}
}

// A claim held by a process that dies (SIGKILL) is released by the kernel;
// the sweep, which ran the other scenarios and waited for that one, then
// runs it.
func TestSweepWaitsForAClaimAndTakesItWhenTheHolderDies(t *testing.T) {
	out := t.TempDir()
	specs := ciSpecs(t, 3)
	holder := holdClaim(t, filepath.Join(out, "sb"))
	done := make(chan *SweepReport, 1)
	var mu sync.Mutex
	var started []string
	go func() {
		rep, err := Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim(), Progress: func(u SweepUpdate) {
			if u.Entry.Status != StatusRunning {
				return
			}
			mu.Lock()
			started = append(started, u.Entry.Name)
			n := len(started)
			mu.Unlock()
			if n == 2 { // sa and sc are under way: the sweep is left with sb
				go func() {
					holder.Process.Kill()
					holder.Wait()
				}()
			}
		}})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	rep := <-done
	if got := strings.Join(started, ","); got != "sa,sc,sb" || rep.Ran != 3 {
		t.Errorf("got runs %s (%d), want sa,sc and then sb once its holder died", got, rep.Ran)
	}
	if _, _, err := Complete(filepath.Join(out, "sb")); err != nil {
		t.Error(err)
	}
}

// A sweep interrupted while waiting for a claim stops waiting.
func TestSweepInterruptedWhileWaitingForAClaim(t *testing.T) {
	out := t.TempDir()
	specs := ciSpecs(t, 2)
	holdClaim(t, filepath.Join(out, "sa"))
	ctx, cancel := context.WithCancel(context.Background())
	rep, err := Sweep(ctx, specs, SweepOptions{OutDir: out, Validate: fastSim(), Progress: func(u SweepUpdate) {
		if u.Entry.Name == "sb" && u.Entry.Status != StatusRunning {
			cancel() // sb is done: the sweep now waits for sa
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Entries[0].Status != "" || rep.Entries[1].Result == nil {
		t.Errorf("got interrupted %v, sa %q, sb result %v; want interrupted, sa not run, sb done", rep.Interrupted, rep.Entries[0].Status, rep.Entries[1].Result != nil)
	}
}
