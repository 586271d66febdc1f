package profiler

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// TraceHeader is trace.csv's first line. Columns:
//   - t_ns: CLOCK_MONOTONIC nanoseconds (MonotonicNS), the clock of events.jsonl;
//   - gpu: the device index;
//   - used_bytes, reserved_bytes, total_bytes: the device-level reading (bytes);
//   - process_bytes: memory held by the profiled process tree on that GPU
//     (bytes); empty when the device cannot say (ErrNotSupported);
//   - error: empty for a reading; otherwise the reason the reading failed,
//     and the figures are empty (a gap). The error is the last column and
//     runs to the end of the line, so it may hold commas.
const TraceHeader = "t_ns,gpu,used_bytes,reserved_bytes,process_bytes,total_bytes,error"

var traceColumns = strings.Split(TraceHeader, ",")

// Sample is one row of trace.csv.
type Sample struct {
	TNS        int64  // CLOCK_MONOTONIC ns
	GPU        int    // device index
	Used       uint64 // bytes
	Reserved   uint64 // bytes
	Total      uint64 // bytes
	Process    uint64 // bytes held by the process tree; meaningful when HasProcess
	HasProcess bool
	Err        string // non-empty: a gap, the figures are not set
}

// Gap reports whether the sample is a failed reading.
func (s Sample) Gap() bool { return s.Err != "" }

// Trace is a parsed trace.csv.
type Trace struct {
	Samples []Sample
	// Truncated is true when the last line had no newline (a crash or an
	// interrupted write); that partial line is not in Samples.
	Truncated bool
	// StartNS and EndNS, when not zero, are the workload's start and end on
	// the trace's clock. trace.csv does not hold them: the runner sets them,
	// and Summarize otherwise finds them in the events (see Summarize).
	StartNS, EndNS int64
}

// GPUs returns the distinct device indices in order of first appearance.
func (t *Trace) GPUs() []int {
	var out []int
	seen := map[int]bool{}
	for _, s := range t.Samples {
		if !seen[s.GPU] {
			seen[s.GPU] = true
			out = append(out, s.GPU)
		}
	}
	return out
}

// Trace writer flush policy: a buffered writer is flushed every
// traceFlushRows rows or when traceFlushNS has passed since the last flush
// (by the samples' clock), so an interrupted run loses at most one buffer.
const (
	traceFlushRows = 256
	traceFlushNS   = 100_000_000 // 100 ms
)

// TraceWriter writes trace.csv rows as they are sampled. It is not safe for
// concurrent use; the Sampler owns it while it runs.
type TraceWriter struct {
	w         io.Writer
	f         *os.File // set by CreateTrace: fsynced on Close
	bw        *bufio.Writer
	line      []byte
	rows      int // since the last flush
	lastFlush int64
	err       error
}

// NewTraceWriter writes the header to w and returns a writer for the rows.
func NewTraceWriter(w io.Writer) (*TraceWriter, error) {
	tw := &TraceWriter{w: w, bw: bufio.NewWriterSize(w, 64<<10), line: make([]byte, 0, 256)}
	if _, err := tw.bw.WriteString(TraceHeader + "\n"); err != nil {
		return nil, fmt.Errorf("write trace header: %w", err)
	}
	if err := tw.bw.Flush(); err != nil {
		return nil, fmt.Errorf("write trace header: %w", err)
	}
	return tw, nil
}

// CreateTrace creates (or truncates) the file at path and writes its header.
func CreateTrace(path string) (*TraceWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create trace: %w", err)
	}
	tw, err := NewTraceWriter(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tw.f = f
	return tw, nil
}

// Write appends one row. It does not allocate. The first error sticks and
// is returned by every later call.
func (tw *TraceWriter) Write(s Sample) error {
	if tw.err != nil {
		return tw.err
	}
	b := tw.line[:0]
	b = strconv.AppendInt(b, s.TNS, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(s.GPU), 10)
	b = append(b, ',')
	if s.Err == "" {
		b = strconv.AppendUint(b, s.Used, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, s.Reserved, 10)
		b = append(b, ',')
		if s.HasProcess {
			b = strconv.AppendUint(b, s.Process, 10)
		}
		b = append(b, ',')
		b = strconv.AppendUint(b, s.Total, 10)
		b = append(b, ',')
	} else {
		b = append(b, ",,,,"...)
		b = appendErrorField(b, s.Err)
	}
	b = append(b, '\n')
	tw.line = b
	if _, err := tw.bw.Write(b); err != nil {
		tw.err = fmt.Errorf("write trace: %w", err)
		return tw.err
	}
	tw.rows++
	if tw.rows >= traceFlushRows || s.TNS-tw.lastFlush >= traceFlushNS {
		tw.lastFlush = s.TNS
		return tw.Flush()
	}
	return nil
}

// appendErrorField appends msg with line breaks turned into spaces; an
// empty-looking message becomes "error" so that the row stays a gap.
func appendErrorField(b []byte, msg string) []byte {
	start := len(b)
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\n' || c == '\r' {
			c = ' '
		}
		b = append(b, c)
	}
	if len(bytes.TrimSpace(b[start:])) == 0 {
		b = append(b[:start], "error"...)
	}
	return b
}

// Flush writes the buffered rows to the underlying writer.
func (tw *TraceWriter) Flush() error {
	if tw.err != nil {
		return tw.err
	}
	tw.rows = 0
	if err := tw.bw.Flush(); err != nil {
		tw.err = fmt.Errorf("write trace: %w", err)
	}
	return tw.err
}

// Close flushes the rows and, for a file made by CreateTrace, syncs it to
// disk and closes it.
func (tw *TraceWriter) Close() error {
	err := tw.Flush()
	if tw.f != nil {
		if serr := tw.f.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("sync trace: %w", serr)
		}
		if cerr := tw.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close trace: %w", cerr)
		}
		tw.f = nil
	}
	return err
}

// TraceError is a parse error in trace.csv: the line (1-based, the header
// is line 1) and, when known, the column (1-based) and its name.
type TraceError struct {
	Line, Column int
	Name         string
	Err          error
}

func (e *TraceError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("line %d, column %d (%s): %v", e.Line, e.Column, e.Name, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *TraceError) Unwrap() error { return e.Err }

// ReadTrace parses trace.csv. It is strict: the header must be TraceHeader,
// every row must have all columns with figures that parse, and a row either
// has its figures (process_bytes may be empty) or an error and no figures.
// The one tolerance is a last line without its newline, which a writer that
// crashed mid-row leaves: it is dropped and Trace.Truncated is set.
func ReadTrace(r io.Reader) (*Trace, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	tr := &Trace{}
	lineNo := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, &TraceError{Line: lineNo + 1, Err: errors.New("line longer than 64 KiB")}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read trace: %w", err)
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		if len(line) == 0 && errors.Is(err, io.EOF) {
			break
		}
		lineNo++
		if lineNo == 1 {
			h := strings.TrimRight(string(line), "\r\n")
			if h != TraceHeader {
				return nil, &TraceError{Line: 1, Err: fmt.Errorf("header %q is not %q", h, TraceHeader)}
			}
			if !complete {
				break
			}
			continue
		}
		if !complete {
			tr.Truncated = true
			break
		}
		s, perr := parseTraceRow(line[:len(line)-1], lineNo)
		if perr != nil {
			return nil, perr
		}
		tr.Samples = append(tr.Samples, s)
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if lineNo == 0 {
		return nil, &TraceError{Line: 1, Err: errors.New("empty trace: no header")}
	}
	return tr, nil
}

// ReadTraceFile reads the trace.csv at path; errors name the file.
func ReadTraceFile(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	defer f.Close()
	tr, err := ReadTrace(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tr, nil
}

func parseTraceRow(line []byte, lineNo int) (Sample, error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	var f [7][]byte
	rest := line
	for i := 0; i < 6; i++ {
		j := bytes.IndexByte(rest, ',')
		if j < 0 {
			return Sample{}, &TraceError{Line: lineNo, Err: fmt.Errorf("got %d columns, want 7 (%s)", i+1, TraceHeader)}
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	f[6] = rest
	colErr := func(c int, err error) error {
		return &TraceError{Line: lineNo, Column: c + 1, Name: traceColumns[c], Err: err}
	}
	var s Sample
	t, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil || t < 0 {
		return Sample{}, colErr(0, fmt.Errorf("got %q, want a non-negative integer", f[0]))
	}
	s.TNS = t
	g, err := strconv.ParseUint(string(f[1]), 10, 31)
	if err != nil {
		return Sample{}, colErr(1, fmt.Errorf("got %q, want a GPU index", f[1]))
	}
	s.GPU = int(g)
	if len(f[6]) > 0 {
		s.Err = string(f[6])
		for c := 2; c <= 5; c++ {
			if len(f[c]) != 0 {
				return Sample{}, colErr(c, fmt.Errorf("got %q in a gap row (error set), want empty", f[c]))
			}
		}
		return s, nil
	}
	num := func(c int) (uint64, error) {
		v, err := strconv.ParseUint(string(f[c]), 10, 64)
		if err != nil {
			return 0, colErr(c, fmt.Errorf("got %q, want bytes as a non-negative integer", f[c]))
		}
		return v, nil
	}
	if s.Used, err = num(2); err != nil {
		return Sample{}, err
	}
	if s.Reserved, err = num(3); err != nil {
		return Sample{}, err
	}
	if len(f[4]) > 0 {
		if s.Process, err = num(4); err != nil {
			return Sample{}, err
		}
		s.HasProcess = true
	}
	if s.Total, err = num(5); err != nil {
		return Sample{}, err
	}
	return s, nil
}
