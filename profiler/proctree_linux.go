package profiler

import (
	"bytes"
	"os"
	"sort"
	"strconv"
)

// procTree follows a workload's process tree through /proc: the root, its
// process group, the children of any member, and every process once seen
// as a member for as long as it lives (a grandchild whose parent died is
// re-parented to init and would otherwise be lost). Zombies do not count.
type procTree struct {
	root  int
	pgid  int
	known map[int]uint64 // pid → start time (clock ticks since boot), to tell a reused PID apart
	buf   []byte
	// zombies are members that died as orphans re-parented to memval (a
	// subreaper): memval reaps them (reapOrphans).
	zombies []int
}

func newProcTree(root int) *procTree {
	return &procTree{root: root, pgid: root, known: map[int]uint64{}, buf: make([]byte, 0, 1024)}
}

type procStat struct {
	pid, ppid, pgrp int
	start           uint64
	zombie          bool
}

// Refresh scans /proc and returns the living members, sorted.
func (t *procTree) Refresh() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	all := make(map[int]procStat, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if st, ok := t.readStat(pid); ok {
			all[pid] = st
		}
	}
	members := map[int]bool{}
	self := os.Getpid()
	t.zombies = t.zombies[:0]
	for pid, st := range all {
		if st.zombie {
			if _, ok := t.known[pid]; ok && pid != t.root && st.ppid == self {
				t.zombies = append(t.zombies, pid)
			}
			continue
		}
		if pid == t.root || st.pgrp == t.pgid {
			members[pid] = true
		} else if st.ppid == self && activeRuns.Load() == 1 {
			// An orphan re-parented to memval (the subreaper) while only
			// this run has a tree: it can only be this tree's.
			members[pid] = true
		} else if s0, ok := t.known[pid]; ok && s0 == st.start {
			members[pid] = true
		}
	}
	for changed := true; changed; { // children of members, to a fixed point
		changed = false
		for pid, st := range all {
			if !st.zombie && !members[pid] && members[st.ppid] {
				members[pid] = true
				changed = true
			}
		}
	}
	known := make(map[int]uint64, len(members))
	out := make([]int, 0, len(members))
	for pid := range members {
		known[pid] = all[pid].start
		out = append(out, pid)
	}
	t.known = known
	sort.Ints(out)
	return out
}

// readStat parses /proc/PID/stat: "pid (comm) state ppid pgrp ... starttime"
// (starttime is field 22); comm may hold spaces and parentheses.
func (t *procTree) readStat(pid int) (procStat, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	n, _ := f.Read(t.buf[:cap(t.buf)])
	f.Close()
	b := t.buf[:n]
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, false
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 20 {
		return procStat{}, false
	}
	st := procStat{pid: pid}
	st.zombie = fields[0][0] == 'Z' || fields[0][0] == 'X'
	st.ppid, _ = strconv.Atoi(string(fields[1]))
	st.pgrp, _ = strconv.Atoi(string(fields[2]))
	st.start, _ = strconv.ParseUint(string(fields[19]), 10, 64)
	return st, true
}
