package profiler

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// The runner's own events. They share events.jsonl with the scenario's,
// with kind "memval": phase "start" when the workload starts and phase
// "exit" when it ends, with data {"exit_code", "status", "signal", "oom"}.
// Consumers that do not know the kind ignore it, as the protocol says.
const (
	RunnerKind  = "memval"
	PhaseStart  = "start"
	PhaseExit   = "exit"
	maxEventLen = 1 << 20 // a side-channel line longer than this is malformed
)

// ParseEventLine decodes one side-channel line. A valid line is one JSON
// object with "v": 1, a positive "t" and a non-empty "kind"; unknown kinds
// and fields are accepted (and ignored by memval).
func ParseEventLine(line []byte) (Event, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return Event{}, errors.New("empty line")
	}
	if len(line) > maxEventLen {
		return Event{}, fmt.Errorf("line of %d bytes is longer than %d", len(line), maxEventLen)
	}
	if line[0] != '{' {
		return Event{}, errors.New("not a JSON object")
	}
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return Event{}, fmt.Errorf("not a valid event: %w", err)
	}
	switch {
	case e.V != 1:
		return Event{}, fmt.Errorf("field v: got %d, want 1", e.V)
	case e.T <= 0:
		return Event{}, fmt.Errorf("field t: got %d, want CLOCK_MONOTONIC nanoseconds > 0", e.T)
	case e.Kind == "":
		return Event{}, errors.New("field kind: missing")
	}
	return e, nil
}

// ParseEvents reads events.jsonl (or a side-channel file): it returns the
// valid events in file order and how many lines were malformed (skipped,
// never fatal). The error is for reading only.
func ParseEvents(r io.Reader) ([]Event, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLen+1)
	var events []Event
	bad := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := ParseEventLine(line)
		if err != nil {
			bad++
			continue
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return events, bad + 1, nil
		}
		return events, bad, fmt.Errorf("read events: %w", err)
	}
	return events, bad, nil
}

// ReadEventsFile reads events.jsonl at path. A missing file is no events.
func ReadEventsFile(path string) ([]Event, int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read events: %w", err)
	}
	defer f.Close()
	ev, bad, err := ParseEvents(f)
	if err != nil {
		return ev, bad, fmt.Errorf("%s: %w", path, err)
	}
	return ev, bad, nil
}

// EventLog is events.jsonl being written. Safe for concurrent use.
type EventLog struct {
	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	events []Event
	err    error
}

// CreateEventLog creates (or truncates) events.jsonl at path.
func CreateEventLog(path string) (*EventLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create events: %w", err)
	}
	return &EventLog{f: f, w: bufio.NewWriter(f)}, nil
}

// AppendLine copies a valid side-channel line (as the scenario wrote it,
// unknown fields included) and keeps its event.
func (l *EventLog) AppendLine(line []byte, e Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	if l.err != nil {
		return l.err
	}
	line = bytes.TrimSpace(line)
	if _, err := l.w.Write(line); err != nil {
		l.err = fmt.Errorf("write events: %w", err)
	} else if err := l.w.WriteByte('\n'); err != nil {
		l.err = fmt.Errorf("write events: %w", err)
	} else if err := l.w.Flush(); err != nil {
		l.err = fmt.Errorf("write events: %w", err)
	}
	return l.err
}

// Append writes an event that did not come as a line (the runner's own, a
// simulated device's).
func (l *EventLog) Append(e Event) error {
	if e.V == 0 {
		e.V = 1
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return l.AppendLine(b, e)
}

// Events returns a copy of the events written so far.
func (l *EventLog) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// Close flushes, syncs and closes the file.
func (l *EventLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return l.err
	}
	err := l.err
	if ferr := l.w.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("write events: %w", ferr)
	}
	if serr := l.f.Sync(); serr != nil && err == nil {
		err = fmt.Errorf("sync events: %w", serr)
	}
	if cerr := l.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close events: %w", cerr)
	}
	l.f = nil
	return err
}

// sideChannel is the file a scenario appends to (MEMVAL_EVENTS), tailed by
// the runner: each Poll reads what was appended since the last one and
// hands back whole lines; a line still being written waits for the next.
type sideChannel struct {
	path    string
	f       *os.File
	buf     []byte
	pending []byte // an incomplete last line
	bad     int    // malformed lines
}

func createSideChannel(path string) (*sideChannel, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create side channel: %w", err)
	}
	return &sideChannel{path: path, f: f, buf: make([]byte, 64<<10)}, nil
}

// Poll reads what was appended and passes every valid line to emit.
func (s *sideChannel) Poll(emit func(line []byte, e Event)) error {
	for {
		n, err := s.f.Read(s.buf)
		if n > 0 {
			s.pending = append(s.pending, s.buf[:n]...)
			s.drain(emit)
		}
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read side channel: %w", err)
		}
	}
}

func (s *sideChannel) drain(emit func(line []byte, e Event)) {
	for {
		i := bytes.IndexByte(s.pending, '\n')
		if i < 0 {
			if len(s.pending) > maxEventLen {
				s.bad++
				s.pending = s.pending[:0]
			}
			return
		}
		s.handle(s.pending[:i], emit)
		s.pending = s.pending[i+1:]
	}
}

func (s *sideChannel) handle(line []byte, emit func(line []byte, e Event)) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	e, err := ParseEventLine(line)
	if err != nil {
		s.bad++
		return
	}
	emit(line, e)
}

// Close reads the rest, takes a last line without its newline if it is a
// whole event, closes and removes the file.
func (s *sideChannel) Close(emit func(line []byte, e Event)) error {
	err := s.Poll(emit)
	if len(s.pending) > 0 {
		s.handle(s.pending, emit)
		s.pending = nil
	}
	if cerr := s.f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if rerr := os.Remove(s.path); rerr != nil && err == nil {
		err = rerr
	}
	return err
}
