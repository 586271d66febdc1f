package profiler

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestTraceRoundTrip(t *testing.T) {
	in := []Sample{
		{TNS: 1000, GPU: 0, Used: 1 << 30, Reserved: 512 << 20, Total: 80 << 30, Process: 900 << 20, HasProcess: true},
		{TNS: 2000, GPU: 1, Used: 5, Reserved: 0, Total: 10},
		{TNS: 3000, GPU: 0, Err: "nvml: GPU is lost, retry later"},
		{TNS: 4000, GPU: 0, Err: "multi\nline"},
		{TNS: 5000, GPU: 0, Used: 7, Total: 9, HasProcess: true}, // process 0, present
	}
	var buf bytes.Buffer
	tw, err := NewTraceWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range in {
		if err := tw.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tr, err := ReadTrace(&buf)
	if err != nil {
		t.Fatalf("ReadTrace: %v", err)
	}
	if tr.Truncated {
		t.Errorf("got Truncated, want a complete trace")
	}
	if len(tr.Samples) != len(in) {
		t.Fatalf("got %d samples, want %d", len(tr.Samples), len(in))
	}
	in[3].Err = "multi line"
	for i := range in {
		if tr.Samples[i] != in[i] {
			t.Errorf("sample %d: got %+v, want %+v", i, tr.Samples[i], in[i])
		}
	}
}

func TestReadTraceTruncatedLastLine(t *testing.T) {
	full := TraceHeader + "\n1,0,10,0,,100,\n2,0,20,0,,100,\n"
	for cut := len(TraceHeader) + 1; cut < len(full); cut++ {
		tr, err := ReadTrace(strings.NewReader(full[:cut]))
		if err != nil {
			t.Fatalf("cut at %d (%q): %v", cut, full[:cut], err)
		}
		wantTrunc := full[cut-1] != '\n'
		if tr.Truncated != wantTrunc {
			t.Errorf("cut at %d: got Truncated %v, want %v", cut, tr.Truncated, wantTrunc)
		}
		for _, s := range tr.Samples {
			if s.Used != 10 && s.Used != 20 {
				t.Errorf("cut at %d: got a partial row %+v", cut, s)
			}
		}
	}
}

func TestReadTraceStrictErrors(t *testing.T) {
	tests := []struct {
		name, in     string
		line, column int
	}{
		{"empty", "", 1, 0},
		{"bad header", "t,gpu\n", 1, 0},
		{"few columns", TraceHeader + "\n1,0,10\n", 2, 0},
		{"bad time", TraceHeader + "\nx,0,10,0,,100,\n", 2, 1},
		{"negative gpu", TraceHeader + "\n1,-1,10,0,,100,\n", 2, 2},
		{"bad used", TraceHeader + "\n1,0,1.5,0,,100,\n", 2, 3},
		{"missing reserved", TraceHeader + "\n1,0,10,,,100,\n", 2, 4},
		{"bad process", TraceHeader + "\n1,0,10,0,p,100,\n", 2, 5},
		{"figures in gap", TraceHeader + "\n1,0,10,,,,lost\n", 3 - 1, 3},
		{"later line", TraceHeader + "\n1,0,10,0,,100,\n2,0,10,0,,-3,\n", 3, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTrace(strings.NewReader(tc.in))
			var te *TraceError
			if !errors.As(err, &te) {
				t.Fatalf("got error %v, want a *TraceError", err)
			}
			if te.Line != tc.line || te.Column != tc.column {
				t.Errorf("got line %d column %d (%v), want line %d column %d", te.Line, te.Column, err, tc.line, tc.column)
			}
		})
	}
}

// countingWriter counts the writes that reach it.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return c.Buffer.Write(p) }

func TestTraceWriterFlushPolicy(t *testing.T) {
	var cw countingWriter
	tw, err := NewTraceWriter(&cw)
	if err != nil {
		t.Fatal(err)
	}
	header := cw.Len()
	// Rows 0.1 ms apart: nothing reaches the writer before traceFlushRows
	// rows or 100 ms.
	tw.lastFlush = 1
	for i := 0; i < traceFlushRows-1; i++ {
		tw.Write(Sample{TNS: int64(2 + i*100_000), Used: 1, Total: 2})
	}
	if cw.Len() != header {
		t.Fatalf("got %d bytes flushed before %d rows or 100 ms, want none", cw.Len()-header, traceFlushRows)
	}
	tw.Write(Sample{TNS: 99_000_000, Used: 1, Total: 2})
	if cw.Len() == header {
		t.Fatalf("got nothing flushed after %d rows, want a flush", traceFlushRows)
	}
	n := cw.Len()
	tw.Write(Sample{TNS: 99_000_000 + traceFlushNS, Used: 1, Total: 2})
	if cw.Len() == n {
		t.Fatalf("got nothing flushed after 100 ms, want a flush")
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, io.ErrShortWrite }

func TestTraceWriterErrorSticks(t *testing.T) {
	if _, err := NewTraceWriter(failWriter{}); err == nil {
		t.Fatal("got no error writing the header to a failing writer")
	}
}

func TestTraceWriterDoesNotAllocate(t *testing.T) {
	tw, _ := NewTraceWriter(io.Discard)
	s := Sample{TNS: 123456789, GPU: 3, Used: 1 << 35, Reserved: 1 << 20, Total: 80 << 30, Process: 1 << 34, HasProcess: true}
	allocs := testing.AllocsPerRun(1000, func() { tw.Write(s) })
	if allocs != 0 {
		t.Errorf("got %.1f allocations per row, want 0", allocs)
	}
}

func FuzzReadTrace(f *testing.F) {
	f.Add([]byte(TraceHeader + "\n1,0,10,0,,100,\n2,0,,,,,lost, really\n3,1,5,5,5,5,"))
	f.Add([]byte(TraceHeader + "\n"))
	f.Add([]byte("t_ns"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ReadTrace(bytes.NewReader(b))
		if err != nil {
			return
		}
		// What parses must write back and parse to the same samples.
		var buf bytes.Buffer
		tw, _ := NewTraceWriter(&buf)
		for _, s := range tr.Samples {
			tw.Write(s)
		}
		tw.Flush()
		tr2, err := ReadTrace(&buf)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if len(tr2.Samples) != len(tr.Samples) {
			t.Fatalf("re-read: got %d samples, want %d", len(tr2.Samples), len(tr.Samples))
		}
		for i := range tr.Samples {
			a, b := tr.Samples[i], tr2.Samples[i]
			if a.Gap() != b.Gap() || a.TNS != b.TNS || a.GPU != b.GPU || a.Used != b.Used || a.Process != b.Process {
				t.Fatalf("re-read sample %d: got %+v, want %+v", i, b, a)
			}
		}
	})
}
