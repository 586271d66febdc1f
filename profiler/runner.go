package profiler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memval/memval/profiler/schema"
)

// Names of the files a run leaves in its folder (besides ResultFile).
const (
	TraceFile  = "trace.csv"
	EventsFile = "events.jsonl"
	sideFile   = ".events-side.jsonl" // the side channel, removed at the end
)

// Runner timing.
const (
	DefaultGrace    = 5 * time.Second        // how long descendants may outlive the workload's main process
	housekeepEvery  = 20 * time.Millisecond  // side channel, timeline, end of run
	treeEvery       = 100 * time.Millisecond // process-tree refresh
	progressEvery   = 100 * time.Millisecond // live progress line
	killAfterCancel = 5 * time.Second        // SIGTERM, then SIGKILL, when ctx is cancelled
	drainOutput     = time.Second            // waiting for the workload's stdout/stderr to close
)

// RunOptions configures Run. Device and OutDir are required.
type RunOptions struct {
	Device Device
	// Command is the program to run and its arguments. Empty: the Device
	// must be a Timeline whose own simulated process is the workload.
	Command  []string
	Interval time.Duration // sampling interval; 0: DefaultInterval
	OutDir   string        // the run's folder (created): trace.csv, events.jsonl, result.json
	Env      []string      // added to the environment the command inherits ("K=V")
	Stdin    io.Reader     // nil: no input
	Stdout   io.Writer     // the command's output passes through here; nil: discarded
	Stderr   io.Writer     // likewise, scanned for CUDA out-of-memory messages
	Progress io.Writer     // live progress line (~10 per second); nil: quiet
	GPU      int           // the GPU to summarise; -1: the busiest

	// Signals, when not nil, are forwarded to the command's process group
	// (it runs in its own group): the first SIGINT or SIGTERM marks the run
	// interrupted, a second one kills the group (SIGKILL). Without a
	// command, the first one ends the run. Cancelling ctx acts as an
	// interruption: SIGTERM, then SIGKILL after a few seconds.
	Signals <-chan os.Signal
	Grace   time.Duration // how long descendants may outlive the main process; 0: DefaultGrace
	Tool    string        // Result.Tool, e.g. "memval v0.1.0"
	Notices []string      // copied into Result.Notices (e.g. a fallback to the simulated device)
}

// oomMarkers are what PyTorch prints when CUDA runs out of memory.
var oomMarkers = [][]byte{[]byte("CUDA out of memory"), []byte("OutOfMemoryError")}

// Run profiles one workload: it records a baseline, starts the command (or
// the device's simulated workload), samples every GPU into trace.csv,
// copies the side channel's events into events.jsonl, follows the process
// tree, forwards signals, and when the workload and its descendants are
// gone writes result.json and returns it. A workload that fails, crashes,
// is killed or runs out of memory is a normal outcome recorded in
// Summary.Status, not an error. The error is for the run itself (bad
// options, a command that cannot start, files that cannot be written); when
// the workload ran, the Result is returned with it.
func Run(ctx context.Context, opts RunOptions) (*schema.Result, error) {
	dev := opts.Device
	if dev == nil {
		return nil, errors.New("run: no device")
	}
	if opts.OutDir == "" {
		return nil, errors.New("run: no output folder")
	}
	tl, isTimeline := dev.(Timeline)
	if len(opts.Command) == 0 && !isTimeline {
		return nil, fmt.Errorf("run: no command to profile and device %s has no simulated workload: give a command after --", dev.Kind())
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	tw, err := CreateTrace(filepath.Join(opts.OutDir, TraceFile))
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	smp, err := NewSampler(dev, SamplerOptions{Interval: opts.Interval, Trace: tw})
	if err != nil {
		tw.Close()
		return nil, fmt.Errorf("run: %w", err)
	}
	elog, err := CreateEventLog(filepath.Join(opts.OutDir, EventsFile))
	if err != nil {
		tw.Close()
		return nil, fmt.Errorf("run: %w", err)
	}
	r := &run{opts: opts, dev: dev, tl: tl, smp: smp, tw: tw, elog: elog}
	return r.run(ctx)
}

// run is one Run in progress.
type run struct {
	opts RunOptions
	dev  Device
	tl   Timeline // nil when the device is not one
	smp  *Sampler
	tw   *TraceWriter
	elog *EventLog
	side *sideChannel

	cmd        *exec.Cmd
	tree       *procTree
	outputs    sync.WaitGroup // copying the command's stdout/stderr
	pipes      []*os.File     // read ends to close when draining gives up
	stderrOOM  atomic.Bool
	interrupts int
	notices    []string
}

func (r *run) run(ctx context.Context) (*schema.Result, error) {
	opts := r.opts
	withCommand := len(opts.Command) > 0
	if withCommand {
		r.smp.SetTracked([]int{}) // nothing is ours before the start
		side, err := createSideChannel(filepath.Join(opts.OutDir, sideFile))
		if err != nil {
			r.abort()
			return nil, fmt.Errorf("run: %w", err)
		}
		r.side = side
	}

	// Baseline: a few samples before the start.
	r.smp.SampleOnce()
	sctx, stopSampler := context.WithCancel(context.Background())
	samplerDone := make(chan error, 1)
	go func() { samplerDone <- r.smp.Run(sctx) }()
	time.Sleep(min(3*r.smp.Interval(), 100*time.Millisecond))

	startNS := r.smp.Now()
	var waitCh chan *os.ProcessState
	if withCommand {
		var err error
		waitCh, err = r.startCommand()
		if err != nil {
			stopSampler()
			<-samplerDone
			r.abort()
			return nil, fmt.Errorf("run: start %s: %w", opts.Command[0], err)
		}
	}
	if r.tl != nil {
		r.tl.Start(startNS)
	}
	startData := map[string]any{}
	if r.cmd != nil {
		startData["pid"] = r.cmd.Process.Pid
	}
	r.elog.Append(Event{V: 1, T: startNS, Kind: RunnerKind, Phase: PhaseStart, Data: startData})

	var progress *Progress
	if opts.Progress != nil {
		progress = NewProgress(opts.Progress)
	}
	began := time.Now()
	tick := time.NewTicker(housekeepEvery)
	defer tick.Stop()
	var (
		state         *os.ProcessState
		exitedAt      time.Time
		tlDone        bool
		tlCode        int
		tlOOM         bool
		lastTree      time.Time
		lastProgress  time.Time
		killAt        time.Time
		ctxDone       = ctx.Done()
		signals       = opts.Signals
		interruptOnly bool // no command: an interruption ends the run
	)
	for {
		select {
		case st := <-waitCh:
			state, exitedAt, waitCh = st, time.Now(), nil
			r.refreshTree()
		case sig := <-signals:
			r.interrupt(sig, &killAt)
			interruptOnly = !withCommand
		case <-ctxDone:
			ctxDone = nil
			r.interrupt(syscall.SIGTERM, &killAt)
			if killAt.IsZero() {
				killAt = time.Now().Add(killAfterCancel)
			}
			interruptOnly = !withCommand
		case now := <-tick.C:
			r.pollEvents()
			if withCommand && (state != nil || now.Sub(lastTree) >= treeEvery) {
				lastTree = now
				r.refreshTree()
			}
			if progress != nil && now.Sub(lastProgress) >= progressEvery {
				lastProgress = now
				n, gaps := r.smp.Counts()
				progress.Update(now.Sub(began), r.smp.Live(), n, gaps)
			}
			if !killAt.IsZero() && now.After(killAt) && r.cmd != nil {
				syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
				killAt = time.Time{}
			}
			if !withCommand && !tlDone {
				tlDone, tlCode, tlOOM = r.tl.Finished(r.smp.Now())
			}
		}
		if interruptOnly || tlDone {
			break
		}
		if state != nil {
			members := r.tree.known
			if len(members) == 0 {
				break
			}
			if time.Since(exitedAt) > opts.Grace {
				r.notices = append(r.notices, fmt.Sprintf("%d process(es) of the workload's tree still running %v after it exited; not waited for", len(members), opts.Grace))
				break
			}
		}
	}
	endNS := r.smp.Now()
	stopSampler()
	samplerErr := <-samplerDone
	if progress != nil {
		progress.Done()
	}
	r.drainOutputs()
	r.pollEvents()
	if r.side != nil {
		if err := r.side.Close(r.emitSide); err != nil {
			r.notices = append(r.notices, "side channel: "+err.Error())
		}
		if r.side.bad > 0 {
			r.notices = append(r.notices, fmt.Sprintf("%d malformed line(s) on the side channel (%s) skipped", r.side.bad, EventsEnv))
		}
	}

	events := r.elog.Events()
	var sum schema.Summary
	if withCommand {
		sum = commandStatus(state, r.interrupts > 0, r.stderrOOM.Load() || eventsOOM(events))
	} else {
		sum = timelineStatus(tlDone, tlCode, tlOOM || eventsOOM(events), r.interrupts > 0)
	}
	exitData := map[string]any{"exit_code": sum.ExitCode, "status": sum.Status, "oom": sum.OOM}
	if sum.Signal != "" {
		exitData["signal"] = sum.Signal
	}
	r.elog.Append(Event{V: 1, T: endNS, Kind: RunnerKind, Phase: PhaseExit, OOM: sum.OOM, Data: exitData})
	events = r.elog.Events()

	var errs []error
	if samplerErr != nil {
		errs = append(errs, samplerErr)
	}
	if err := r.tw.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := r.elog.Close(); err != nil {
		errs = append(errs, err)
	}
	tr, err := ReadTraceFile(filepath.Join(opts.OutDir, TraceFile))
	if err != nil {
		errs = append(errs, err)
		tr = &Trace{}
	}
	tr.StartNS, tr.EndNS = startNS, endNS
	sum = Summarize(tr, events, opts.GPU)
	if sum.PeakProcessBytes == 0 || sum.ProcessSource != "nvml-processes" {
		if reason := r.smp.processFallbackReason(); reason != "" {
			sum.ProcessSource = "device-minus-baseline (" + reason + ")"
		}
	}

	res := &schema.Result{
		Schema:    schema.ResultSchema,
		Tool:      opts.Tool,
		Command:   opts.Command,
		Device:    r.dev.Kind(),
		Simulated: r.dev.Kind() != "nvml",
		Notices:   append(append([]string(nil), opts.Notices...), r.notices...),
		Env:       r.environment(events),
		Summary:   sum,
		Framework: FrameworkFromEvents(events),
	}
	if err := schema.WriteResult(opts.OutDir, res); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("run: %w", errors.Join(errs...))
	}
	return res, nil
}

// abort closes what Run opened when the workload never started.
func (r *run) abort() {
	r.tw.Close()
	r.elog.Close()
	if r.side != nil {
		r.side.Close(func([]byte, Event) {})
	}
}

// startCommand starts the command in its own process group with the side
// channel in its environment; the returned channel gets its exit state.
func (r *run) startCommand() (chan *os.ProcessState, error) {
	opts := r.opts
	cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
	cmd.Env = append(append(os.Environ(), opts.Env...), EventsEnv+"="+r.side.path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdin = opts.Stdin
	cmd.WaitDelay = drainOutput
	var childEnds []*os.File
	if f, ok := opts.Stdout.(*os.File); ok {
		cmd.Stdout = f
	} else if opts.Stdout != nil {
		w, err := r.pipeTo(opts.Stdout, false)
		if err != nil {
			return nil, err
		}
		cmd.Stdout = w
		childEnds = append(childEnds, w)
	}
	stderr := opts.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	w, err := r.pipeTo(stderr, true)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = w
	childEnds = append(childEnds, w)
	err = cmd.Start()
	for _, f := range childEnds {
		f.Close() // the child holds its own copies
	}
	if err != nil {
		for _, p := range r.pipes {
			p.Close()
		}
		return nil, err
	}
	r.cmd = cmd
	r.tree = newProcTree(cmd.Process.Pid)
	r.refreshTree()
	ch := make(chan *os.ProcessState, 1)
	go func() {
		cmd.Wait()
		ch <- cmd.ProcessState
	}()
	return ch, nil
}

// pipeTo makes a pipe whose read end is copied to w (and scanned for
// out-of-memory messages when scan is set) until every writer closes it;
// it returns the write end for the child.
func (r *run) pipeTo(w io.Writer, scan bool) (*os.File, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r.pipes = append(r.pipes, pr)
	dst := w
	if scan {
		dst = &oomScanner{w: w, found: &r.stderrOOM}
	}
	r.outputs.Add(1)
	go func() {
		defer r.outputs.Done()
		io.Copy(dst, pr)
	}()
	return pw, nil
}

// drainOutputs waits for the command's output to be copied, at most
// drainOutput (a descendant still running may hold the pipe open).
func (r *run) drainOutputs() {
	done := make(chan struct{})
	go func() { r.outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainOutput):
		for _, p := range r.pipes {
			p.Close()
		}
		<-done
	}
}

func (r *run) refreshTree() {
	if r.tree == nil {
		return
	}
	r.smp.SetTracked(r.tree.Refresh())
}

// interrupt forwards sig to the command's group: the first time as is,
// then SIGKILL.
func (r *run) interrupt(sig os.Signal, killAt *time.Time) {
	r.interrupts++
	if r.cmd == nil {
		return
	}
	pgid := r.cmd.Process.Pid
	s, ok := sig.(syscall.Signal)
	if !ok {
		s = syscall.SIGTERM
	}
	if r.interrupts > 1 {
		s = syscall.SIGKILL
		*killAt = time.Time{}
	}
	syscall.Kill(-pgid, s)
}

// pollEvents copies new side-channel lines and the timeline's events.
func (r *run) pollEvents() {
	if r.side != nil {
		if err := r.side.Poll(r.emitSide); err != nil && len(r.notices) < 10 {
			r.notices = append(r.notices, err.Error())
		}
	}
	if r.tl != nil {
		for _, e := range r.tl.Events(r.smp.Now()) {
			r.elog.Append(e)
		}
	}
}

func (r *run) emitSide(line []byte, e Event) { r.elog.AppendLine(line, e) }

// environment describes where the run happened.
func (r *run) environment(events []Event) schema.Environment {
	env := schema.Environment{OS: runtime.GOOS + "/" + runtime.GOARCH}
	env.Host, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		env.OS += " " + unix.ByteSliceToString(u.Release[:])
	}
	env.GPUs = r.smp.GPUs()
	env.Versions = r.dev.Versions()
	env.MemoryInfoVersion = r.smp.MemoryInfoVersion()
	applyInfoEvents(&env, events)
	return env
}

// commandStatus maps the command's exit to the summary's exit fields.
// Precedence: interrupted, then oom, then killed/crashed/failed/ok. A
// signal's exit code is 128 + its number, as shells report it.
func commandStatus(st *os.ProcessState, interrupted, oom bool) schema.Summary {
	var s schema.Summary
	s.OOM = oom
	if st == nil {
		s.ExitCode, s.Status = -1, schema.StatusKilled
		if interrupted {
			s.Status = schema.StatusInterrupted
		}
		return s
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		s.ExitCode = 128 + int(ws.Signal())
		s.Signal = unix.SignalName(ws.Signal())
		if s.Signal == "" {
			s.Signal = ws.Signal().String()
		}
		s.Status = schema.StatusCrashed
		if ws.Signal() == syscall.SIGKILL {
			s.Status = schema.StatusKilled
		}
	default:
		s.ExitCode = st.ExitCode()
		s.Status = schema.StatusOK
		if s.ExitCode != 0 {
			s.Status = schema.StatusFailed
		}
	}
	if oom {
		s.Status = schema.StatusOOM
	}
	if interrupted {
		s.Status = schema.StatusInterrupted
	}
	return s
}

// timelineStatus is commandStatus for a device's simulated workload.
func timelineStatus(done bool, code int, oom, interrupted bool) schema.Summary {
	s := schema.Summary{ExitCode: code, OOM: oom, Status: schema.StatusOK}
	switch {
	case interrupted || !done:
		s.Status = schema.StatusInterrupted
	case oom:
		s.Status = schema.StatusOOM
	case code != 0:
		s.Status = schema.StatusFailed
	}
	return s
}

func eventsOOM(events []Event) bool {
	for _, e := range events {
		if e.Kind == "error" && e.OOM {
			return true
		}
	}
	return false
}

// oomScanner passes output through and notes PyTorch's out-of-memory
// messages, also when one is split across writes.
type oomScanner struct {
	w     io.Writer
	found *atomic.Bool
	tail  []byte
}

func (o *oomScanner) Write(p []byte) (int, error) {
	if !o.found.Load() {
		buf := append(o.tail, p...)
		for _, m := range oomMarkers {
			if bytes.Contains(buf, m) {
				o.found.Store(true)
			}
		}
		keep := 32
		if len(buf) < keep {
			keep = len(buf)
		}
		o.tail = append(o.tail[:0], buf[len(buf)-keep:]...)
	}
	n, err := o.w.Write(p)
	if err != nil {
		// The user's stream is gone (a closed pipe): keep draining the
		// child's output so that it does not block.
		return len(p), nil
	}
	return n, nil
}
