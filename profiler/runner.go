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
	DefaultGrace   = 5 * time.Second        // how long descendants may outlive the workload's main process
	housekeepEvery = 20 * time.Millisecond  // side channel, timeline, end of run
	treeEvery      = 100 * time.Millisecond // process-tree refresh
	progressEvery  = 100 * time.Millisecond // live progress line
	drainOutput    = time.Second            // waiting for the workload's stdout/stderr to close
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
	// interrupted and is forwarded as it is; InterruptGrace later the whole
	// tree gets SIGTERM, then SIGKILL; a second signal kills the tree at
	// once (SIGKILL). Without a command, the first one ends the run.
	// Cancelling ctx acts as an interruption by SIGTERM.
	//
	// The command dies with memval (a parent-death signal, SIGKILL), and
	// every process of its tree still running when the run ends is ended
	// (Result.KilledProcesses). When Stdin is the terminal and memval is in
	// its foreground, the command's group gets the terminal for its run.
	Signals <-chan os.Signal
	Grace   time.Duration // how long descendants may outlive the main process; 0: DefaultGrace
	// InterruptGrace is how long the tree has after a forwarded
	// interruption before every process of it gets SIGTERM (and at most
	// 5 s more before SIGKILL); 0: DefaultInterruptGrace; at most
	// MaxInterruptGrace.
	InterruptGrace time.Duration
	Tool           string // Result.Tool, e.g. "memval v0.1.0"
	// Environ looks up the processes' environments for their ranks; nil:
	// /proc (or the Device, when it is an EnvironSource).
	Environ EnvironSource
	// Sampling, when set, is called with the sampler once sampling starts
	// (e.g. to serve its figures as Prometheus metrics).
	Sampling func(*Sampler)
	Notices  []string // copied into Result.Notices (e.g. a fallback to the simulated device)
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
	if opts.InterruptGrace <= 0 {
		opts.InterruptGrace = DefaultInterruptGrace
	}
	opts.InterruptGrace = min(opts.InterruptGrace, MaxInterruptGrace)
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	tw, err := CreateTrace(filepath.Join(opts.OutDir, TraceFile))
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	smp, err := NewSampler(dev, SamplerOptions{Interval: opts.Interval, Trace: tw, RanksPath: filepath.Join(opts.OutDir, RanksFile), Environ: opts.Environ})
	if err != nil {
		tw.Close()
		return nil, fmt.Errorf("run: %w", err)
	}
	if err := CheckGPU(smp.GPUs(), opts.GPU); err != nil {
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

	release     func() // unlocks the thread that started the command
	ttyFD       int    // the terminal given to the command, when ttyOwned
	ttyOwned    bool
	esc         escalation
	escAt       time.Time // when the next escalation step is due
	killed      map[int]*schema.KilledProcess
	killedOrder []int
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
	if opts.Sampling != nil {
		opts.Sampling(r.smp)
	}
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
		traceErr      error // the sampler stopped on a trace write error
		traceErrNS    int64
		state         *os.ProcessState
		exitedAt      time.Time
		tlDone        bool
		tlCode        int
		tlOOM         bool
		lastTree      time.Time
		lastProgress  time.Time
		ctxDone       = ctx.Done()
		signals       = opts.Signals
		interruptOnly bool // no command: an interruption ends the run
	)
	for {
		select {
		case st := <-waitCh:
			state, exitedAt, waitCh = st, time.Now(), nil
			r.giveBackTerminal()
			r.refreshTree()
		case err := <-samplerDone:
			// Only a trace write error stops the sampler early: the run
			// goes on without samples, and its result says so.
			samplerDone, traceErr, traceErrNS = nil, err, r.smp.Now()
			if traceErr == nil {
				traceErr = errors.New("sampler stopped")
			}
			r.traceFailed(traceErr, traceErrNS-startNS)
		case sig := <-signals:
			r.interrupt(sig)
			interruptOnly = !withCommand
		case <-ctxDone:
			ctxDone = nil
			r.interrupt(syscall.SIGTERM)
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
			r.escalate(now)
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
			if r.esc == escNone && time.Since(exitedAt) > opts.Grace {
				r.notices = append(r.notices, fmt.Sprintf("%d process(es) of the workload's tree still running %v after it exited: ended (see killed_processes)", len(members), opts.Grace))
				r.killTree(syscall.SIGTERM)
				r.esc, r.escAt = escTerm, time.Now().Add(min(opts.InterruptGrace, killWait))
			}
			if r.esc == escKill && time.Now().After(r.escAt) {
				r.notices = append(r.notices, fmt.Sprintf("%d process(es) of the workload's tree still there %v after SIGKILL (uninterruptible sleep?): not waited for", len(members), finalWait))
				break
			}
		} else if r.esc == escKill && time.Now().After(r.escAt) {
			r.notices = append(r.notices, fmt.Sprintf("the workload's main process did not end %v after SIGKILL: not waited for", finalWait))
			break
		}
	}
	endNS := r.smp.Now()
	stopSampler()
	var samplerErr error
	if samplerDone != nil {
		samplerErr = <-samplerDone
	} else {
		samplerErr = traceErr
	}
	r.giveBackTerminal()
	if r.release != nil {
		r.release()
	}
	if r.cmd != nil {
		activeRuns.Add(-1)
	}
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
		if traceErr == nil {
			traceErr, traceErrNS = samplerErr, endNS
		}
	}
	if err := r.tw.Close(); err != nil && (samplerErr == nil || err.Error() != samplerErr.Error()) {
		errs = append(errs, err)
		if traceErr == nil {
			traceErr, traceErrNS = err, endNS
		}
	}
	if err := r.elog.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := r.smp.ranks.close(); err != nil {
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
	if traceErr != nil {
		r.notices = append(r.notices, markTraceIncomplete(&sum, tr, traceErr, startNS, endNS))
	}

	res := &schema.Result{
		Schema:    schema.ResultSchema,
		Tool:      opts.Tool,
		Command:   opts.Command,
		Device:    r.dev.Kind(),
		Simulated: DeviceSimulated(r.dev),
		Notices:   append(append([]string(nil), opts.Notices...), r.notices...),
		Env:       r.environment(events),
		Summary:   sum,
		Framework: FrameworkFromEvents(events),

		KilledProcesses: r.killedList(),
		Ranks:           r.smp.rankPeaks(),
	}
	if sw, ok := r.dev.(interface{ SimulatedWorkload() string }); ok {
		res.SimulatedWorkload = sw.SimulatedWorkload()
		if withCommand {
			res.Notices = append(res.Notices, "every memory figure is the simulated workload's ("+res.SimulatedWorkload+"), not "+opts.Command[0]+"'s: the simulated device does not measure the command's own memory")
		}
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
	r.giveBackTerminal()
	if r.release != nil {
		r.release()
	}
	r.tw.Close()
	r.elog.Close()
	if r.side != nil {
		r.side.Close(func([]byte, Event) {})
	}
}

// startCommand starts the command in its own process group with the side
// channel in its environment; the returned channel gets its exit state.
// The command gets SIGKILL when memval dies (Pdeathsig, see startLocked);
// memval becomes the subreaper of the command's orphans; when memval owns
// the terminal, the command's group gets it (Foreground).
func (r *run) startCommand() (chan *os.ProcessState, error) {
	opts := r.opts
	cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
	cmd.Env = append(append(os.Environ(), opts.Env...), EventsEnv+"="+r.side.path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdin = opts.Stdin
	if fd, ok := foregroundTTY(opts.Stdin); ok {
		// Ctty is the child's descriptor: its stdin (0) is the terminal.
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, 0
		r.ttyFD, r.ttyOwned = fd, true
	}
	if err := becomeSubreaper(); err != nil && len(r.notices) < 10 {
		r.notices = append(r.notices, "could not become the subreaper of the workload's orphans: "+err.Error())
	}
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
	r.release, err = startLocked(cmd)
	for _, f := range childEnds {
		f.Close() // the child holds its own copies
	}
	if err != nil {
		r.ttyOwned = false
		for _, p := range r.pipes {
			p.Close()
		}
		return nil, err
	}
	r.cmd = cmd
	activeRuns.Add(1)
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
	reapOrphans(r.tree.zombies)
}

// interrupt forwards sig to the command's group the first time and starts
// the escalation (escalate); a second interruption kills the whole tree.
// A SIGTERM (or a cancelled context) counts as the SIGTERM step.
func (r *run) interrupt(sig os.Signal) {
	r.interrupts++
	if r.cmd == nil {
		return
	}
	s, ok := sig.(syscall.Signal)
	if !ok {
		s = syscall.SIGTERM
	}
	r.refreshTree() // know every member before some of them die
	now := time.Now()
	switch {
	case r.interrupts > 1 || r.esc >= escTerm:
		r.killTree(syscall.SIGKILL)
		r.esc, r.escAt = escKill, now.Add(finalWait)
	case s == syscall.SIGTERM:
		r.signalTree(s, nil)
		r.esc, r.escAt = escTerm, now.Add(min(r.opts.InterruptGrace, killWait))
	default:
		syscall.Kill(-r.cmd.Process.Pid, s)
		r.esc, r.escAt = escForwarded, now.Add(r.opts.InterruptGrace)
	}
}

// escalate takes the next step of ending the tree when it is due:
// forwarded interruption → SIGTERM to every process → SIGKILL.
func (r *run) escalate(now time.Time) {
	if r.cmd == nil || r.esc == escNone || r.esc == escKill || now.Before(r.escAt) {
		return
	}
	if r.esc == escForwarded {
		r.killTree(syscall.SIGTERM)
		r.esc, r.escAt = escTerm, now.Add(min(r.opts.InterruptGrace, killWait))
		return
	}
	r.killTree(syscall.SIGKILL)
	r.esc, r.escAt = escKill, now.Add(finalWait)
}

// giveBackTerminal returns the terminal to memval's group once.
func (r *run) giveBackTerminal() {
	if !r.ttyOwned {
		return
	}
	r.ttyOwned = false
	if err := restoreForeground(r.ttyFD); err != nil && len(r.notices) < 10 {
		r.notices = append(r.notices, "could not take the terminal back from the workload: "+err.Error())
	}
}

// traceFailed says at once, on the workload's stderr, that sampling has
// stopped: the summary comes only when the workload ends.
func (r *run) traceFailed(err error, afterNS int64) {
	if r.opts.Stderr != nil {
		fmt.Fprintf(r.opts.Stderr, "memval: ERROR: %v: sampling stopped %.3f s after the start; the result will be marked %s\n",
			err, float64(afterNS)/1e9, schema.StatusTraceIncomplete)
	}
}

// markTraceIncomplete sets the summary of a run whose trace could not be
// written in full: status trace_incomplete, the error and the time the
// trace covers; it returns a notice with the workload's own status.
func markTraceIncomplete(sum *schema.Summary, tr *Trace, err error, startNS, endNS int64) string {
	covered := 0.0
	if n := len(tr.Samples); n > 0 {
		covered = max(0, float64(tr.Samples[n-1].TNS-startNS)/1e9)
	}
	own := sum.Status
	sum.Status = schema.StatusTraceIncomplete
	sum.TraceError = err.Error()
	sum.TraceCoveredSeconds = covered
	return fmt.Sprintf("trace.csv is incomplete (%v): it covers %.3f s of the %.3f s run; the workload itself ended %s (exit code %d)",
		err, covered, float64(endNS-startNS)/1e9, own, sum.ExitCode)
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
