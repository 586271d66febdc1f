package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

// ClaimFile is the lock file in each scenario's folder of a sweep. A sweep
// runs a scenario only while it holds an exclusive flock(2) on this file,
// so that sweeps sharing an output folder (on one machine, or on several
// over a shared file system) never run, or write, the same scenario.
//
// The kernel releases the lock when its holder exits, however it exits
// (a crash or SIGKILL included), so a dead sweep never blocks another. On
// NFS, Linux implements flock as an NFS byte-range lock (NFSv4, or NFSv3
// with lockd): it works across machines; when a machine holding a lock
// crashes, the server frees the lock when its lease ends (about 90 s for
// NFSv4). File systems without locking (NFS mounted with nolock or
// local_lock=all across machines, some FUSE file systems) either fail the
// lock, and the sweep stops with an error naming the folder, or silently
// lock only on the local machine: there, run one sweep per folder.
const ClaimFile = ".memval-claim"

// errClaimed means another sweep holds the scenario's claim.
var errClaimed = errors.New("claimed by another sweep")

// claim is a held scenario claim.
type claim struct{ f *os.File }

// claimScenario creates dir and takes its claim without waiting: it
// returns errClaimed when another sweep holds it, and an error that says
// so when the file system cannot lock.
func claimScenario(dir string) (*claim, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, ClaimFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return nil, errClaimed
	case errors.Is(err, unix.ENOLCK), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL):
		f.Close()
		return nil, fmt.Errorf("claim %s: the file system does not support file locks (%w): sweeps sharing this folder cannot be kept apart; use a folder on a local disk, or on a file system with locking", path, err)
	default:
		f.Close()
		return nil, fmt.Errorf("claim %s: %w", path, err)
	}
	// Who holds it, for people looking at the folder; the lock is what counts.
	host, _ := os.Hostname()
	if f.Truncate(0) == nil {
		fmt.Fprintf(f, "host %s pid %d since %s\n", host, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	}
	return &claim{f: f}, nil
}

// release gives the claim up (closing the file drops the lock).
func (c *claim) release() {
	if c != nil && c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// Complete reads the result in a scenario's folder and reports whether it
// is whole and valid: result.json decodes with a schema this memval reads
// and holds a scenario with a final verdict (not interrupted or error), the
// run's trace is complete (status not trace_incomplete), and trace.csv is
// there, parses to its end and holds at least the samples and gaps the
// summary counts. Anything else is rerun by a resumed sweep; the error
// says why the result does not count.
func Complete(dir string) (*schema.Result, Scenario, error) {
	res, err := schema.ReadResult(filepath.Join(dir, schema.ResultFile))
	if err != nil {
		return nil, Scenario{}, err
	}
	if len(res.Scenario) == 0 {
		return nil, Scenario{}, errors.New("result.json holds no scenario")
	}
	var sc Scenario
	if err := json.Unmarshal(res.Scenario, &sc); err != nil {
		return nil, Scenario{}, fmt.Errorf("result.json: field scenario: %w", err)
	}
	switch sc.Verdict.Status {
	case "", VerdictInterrupted, VerdictError:
		return nil, Scenario{}, fmt.Errorf("verdict %q is not final", sc.Verdict.Status)
	}
	if res.Summary.Status == schema.StatusTraceIncomplete {
		return nil, Scenario{}, fmt.Errorf("trace incomplete: %s", res.Summary.TraceError)
	}
	tr, err := profiler.ReadTraceFile(filepath.Join(dir, profiler.TraceFile))
	if err != nil {
		return nil, Scenario{}, err
	}
	if tr.Truncated {
		return nil, Scenario{}, errors.New("trace.csv ends in a partial row")
	}
	var samples, gaps int
	for _, s := range tr.Samples {
		switch {
		case s.GPU != res.Summary.GPU:
		case s.Gap():
			gaps++
		default:
			samples++
		}
	}
	if samples == 0 || samples < res.Summary.Samples || gaps < res.Summary.Gaps {
		return nil, Scenario{}, fmt.Errorf("trace.csv holds %d samples and %d gaps of GPU %d, result.json counts %d and %d",
			samples, gaps, res.Summary.GPU, res.Summary.Samples, res.Summary.Gaps)
	}
	return res, sc, nil
}
