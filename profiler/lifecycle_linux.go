package profiler

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memval/memval/profiler/schema"
)

// How the runner ends a workload's process tree (see RunOptions.InterruptGrace):
// the first interruption is forwarded as it is; InterruptGrace later every
// process of the tree gets SIGTERM; killWait after that (at most) SIGKILL;
// finalWait after that the run ends whatever is left. With the longest
// grace (MaxInterruptGrace) memval is done 17 s after the interruption.
const (
	DefaultInterruptGrace = 5 * time.Second
	MaxInterruptGrace     = 10 * time.Second
	killWait              = 5 * time.Second
	finalWait             = 2 * time.Second
)

// escalation is where the runner stands in ending a tree: nothing sent yet,
// the forwarded interruption, SIGTERM, SIGKILL.
type escalation int

const (
	escNone escalation = iota
	escForwarded
	escTerm
	escKill
)

// startLocked starts cmd from a goroutine locked to its OS thread, which
// stays locked (and so alive) until release is called. The parent-death
// signal (SysProcAttr.Pdeathsig) fires when the thread that forked the child
// exits, not the process: a Go thread can exit when a goroutine locked to
// it returns, so the thread is held for the child's life.
func startLocked(cmd *exec.Cmd) (release func(), err error) {
	errc := make(chan error)
	rel := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		errc <- cmd.Start()
		<-rel
		runtime.UnlockOSThread()
	}()
	err = <-errc
	var once sync.Once
	release = func() { once.Do(func() { close(rel) }) }
	if err != nil {
		release()
	}
	return release, err
}

// becomeSubreaper makes memval the reaper of its orphaned descendants
// (PR_SET_CHILD_SUBREAPER): a grandchild whose parent exits is re-parented
// to memval instead of init, so that it stays in the tree the runner
// follows and ends. It is process-wide and kept for memval's life.
var becomeSubreaper = sync.OnceValue(func() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
})

// activeRuns counts the runs whose command is running in this process:
// an orphan re-parented to memval is adopted into a run's tree only while
// that run is the only one (see procTree.Refresh).
var activeRuns atomic.Int32

// foregroundTTY returns the descriptor of stdin when it is a terminal and
// memval's process group is its foreground group: the child then gets the
// terminal (its own group becomes the foreground one), so that a prompt,
// pdb or python -i can read it without SIGTTIN. ok is false otherwise.
func foregroundTTY(stdin any) (fd int, ok bool) {
	f, isFile := stdin.(*os.File)
	if !isFile || f == nil {
		return 0, false
	}
	fd = int(f.Fd())
	pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || pg != unix.Getpgrp() {
		return 0, false
	}
	return fd, true
}

// restoreForeground gives the terminal back to memval's process group.
// memval is then in a background group, so SIGTTOU is ignored for the call
// (otherwise the kernel would stop memval).
func restoreForeground(fd int) error {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	return unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, unix.Getpgrp())
}

// signalTree sends sig to the workload's process group and to every living
// member of its tree (members may have left the group). before, when not
// nil, sees each member before it is signalled.
func (r *run) signalTree(sig syscall.Signal, before func(pid int)) {
	if r.cmd == nil {
		return
	}
	members := r.tree.Refresh()
	r.smp.SetTracked(members)
	if before != nil {
		for _, pid := range members {
			before(pid)
		}
	}
	syscall.Kill(-r.cmd.Process.Pid, sig)
	for _, pid := range members {
		syscall.Kill(pid, sig)
	}
}

// killTree sends sig (SIGTERM or SIGKILL) to the whole tree and records
// each process it reached in r.killed.
func (r *run) killTree(sig syscall.Signal) {
	name := unix.SignalName(sig)
	r.signalTree(sig, func(pid int) {
		if r.killed == nil {
			r.killed = map[int]*schema.KilledProcess{}
		}
		k := r.killed[pid]
		if k == nil {
			k = &schema.KilledProcess{PID: pid, Command: procCommand(pid)}
			r.killed[pid] = k
			r.killedOrder = append(r.killedOrder, pid)
		}
		k.Signal = name
	})
}

// killedList is r.killed in the order first signalled.
func (r *run) killedList() []schema.KilledProcess {
	out := make([]schema.KilledProcess, 0, len(r.killedOrder))
	for _, pid := range r.killedOrder {
		out = append(out, *r.killed[pid])
	}
	return out
}

// procCommand is a process's command line (NULs as spaces), or its name.
func procCommand(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err == nil && len(b) > 0 {
		return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// reapOrphans collects the exit status of zombies that were re-parented to
// memval (the subreaper) from the workload's tree, by PID, never the main
// process (its Wait does) or anyone else's child.
func reapOrphans(pids []int) {
	for _, pid := range pids {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err != nil && !errors.Is(err, unix.ECHILD) {
			continue
		}
	}
}
