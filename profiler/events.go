package profiler

// The side channel. A scenario process reports what it is doing by
// appending JSON lines to the file named by the environment variable
// MEMVAL_EVENTS, which the runner sets (a regular file it creates and then
// tails). One object per line, written and flushed whole:
//
//	{"v":1,"t":123456789012,"kind":"phase","phase":"step_end","step":3,
//	 "allocated":1234,"reserved":2048,"max_allocated":4096,"max_reserved":4096}
//
// Fields:
//   - v: protocol version, 1.
//   - t: CLOCK_MONOTONIC in nanoseconds (Python: time.monotonic_ns(); Go:
//     unix.ClockGettime(unix.CLOCK_MONOTONIC)), the clock trace.csv's t_ns
//     column uses, so events and samples line up.
//   - kind: "phase" (a point in the run), "info" (environment facts: torch,
//     cuda, device, params, backend, attention in "data"), "saved" (bytes
//     autograd saved for backward in one forward: "saved_bytes", "step"),
//     "error" (message in "message"; "oom": true for out-of-memory).
//   - phase: start, model_on_device, step_start, step_end, done (and
//     free-form others a scenario may add).
//   - allocated, reserved, max_allocated, max_reserved: torch.cuda figures
//     in bytes at that point (max_* since the previous phase event; the
//     script resets the peak statistics after reporting them). Absent on CPU.
//
// Unknown kinds and fields are kept but ignored; a line that is not JSON is
// counted as malformed and skipped, never fatal.

// EventsEnv is the environment variable that names the side-channel file.
const EventsEnv = "MEMVAL_EVENTS"

// Event is one line of events.jsonl.
type Event struct {
	V            int            `json:"v"`
	T            int64          `json:"t"` // CLOCK_MONOTONIC ns
	Kind         string         `json:"kind"`
	Phase        string         `json:"phase,omitempty"`
	Step         *int           `json:"step,omitempty"`
	Allocated    *uint64        `json:"allocated,omitempty"`
	Reserved     *uint64        `json:"reserved,omitempty"`
	MaxAllocated *uint64        `json:"max_allocated,omitempty"`
	MaxReserved  *uint64        `json:"max_reserved,omitempty"`
	SavedBytes   *uint64        `json:"saved_bytes,omitempty"`
	OOM          bool           `json:"oom,omitempty"`
	Message      string         `json:"message,omitempty"`
	Data         map[string]any `json:"data,omitempty"`
}
