package profiler

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseEventLine(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		kind string
	}{
		{`{"v":1,"t":5,"kind":"phase","phase":"step_end","step":3,"allocated":10}`, true, "phase"},
		{`{"v":1,"t":5,"kind":"future","whatever":[1,2]}`, true, "future"},
		{`  {"v":1,"t":5,"kind":"info","data":{"torch":"2.3"}}  `, true, "info"},
		{`{"v":2,"t":5,"kind":"phase"}`, false, ""},
		{`{"v":1,"kind":"phase"}`, false, ""},
		{`{"v":1,"t":5}`, false, ""},
		{`{"v":1,"t":5,"kind":"phase","allocated":-1}`, false, ""},
		{`not json`, false, ""},
		{`[1]`, false, ""},
		{``, false, ""},
	}
	for _, tc := range tests {
		e, err := ParseEventLine([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("ParseEventLine(%q): got error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && e.Kind != tc.kind {
			t.Errorf("ParseEventLine(%q): got kind %q, want %q", tc.in, e.Kind, tc.kind)
		}
	}
}

func TestParseEventsCountsMalformed(t *testing.T) {
	in := `{"v":1,"t":1,"kind":"phase","phase":"start"}
garbage

{"v":1,"t":2,"kind":"phase","phase":"done"}
{"v":1,"t":3,"kind":"phase"` // no newline, cut
	ev, bad, err := ParseEvents(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 2 || bad != 2 {
		t.Errorf("got %d events and %d malformed, want 2 and 2", len(ev), bad)
	}
}

func TestSideChannelTailsWholeLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "side")
	sc, err := createSideChannel(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []Event
	emit := func(_ []byte, e Event) { got = append(got, e) }
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString(`{"v":1,"t":1,"kind":"phase","phase":"start"}` + "\n" + `{"v":1,"t":2,"kind":"ph`)
	sc.Poll(emit)
	if len(got) != 1 {
		t.Fatalf("after a line and a half: got %d events, want 1", len(got))
	}
	w.WriteString(`ase","phase":"done"}` + "\nnot json\n" + `{"v":1,"t":3,"kind":"phase","phase":"last"}`)
	sc.Poll(emit)
	if len(got) != 2 || got[1].Phase != "done" {
		t.Fatalf("after the rest: got %+v, want start and done", got)
	}
	if err := sc.Close(emit); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || sc.bad != 1 {
		t.Errorf("after close: got %d events and %d malformed, want 3 and 1", len(got), sc.bad)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("got the side channel still there after Close (%v), want it removed", err)
	}
}

func TestEventLogKeepsLinesAsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l, err := CreateEventLog(path)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(`{"v":1,"t":7,"kind":"info","extra":"kept"}`)
	e, _ := ParseEventLine(line)
	l.AppendLine(line, e)
	l.Append(Event{T: 8, Kind: RunnerKind, Phase: PhaseExit})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte(`"extra":"kept"`)) {
		t.Errorf("got %s, want the unknown field kept", b)
	}
	ev, bad, err := ReadEventsFile(path)
	if err != nil || bad != 0 || len(ev) != 2 || ev[1].V != 1 {
		t.Errorf("read back: got %+v, %d malformed, %v; want 2 valid events", ev, bad, err)
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(`{"v":1,"t":1,"kind":"phase","phase":"step_end","step":1,"allocated":5,"data":{"a":1}}` + "\n"))
	f.Add([]byte("{}\n[]\n\"x\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, bad, err := ParseEvents(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("ParseEvents on an in-memory reader: %v", err)
		}
		if bad < 0 || len(ev) > bytes.Count(b, []byte("\n"))+1 {
			t.Fatalf("got %d events and %d malformed from %d lines", len(ev), bad, bytes.Count(b, []byte("\n"))+1)
		}
		for _, e := range ev {
			if e.V != 1 || e.T <= 0 || e.Kind == "" {
				t.Fatalf("accepted an invalid event %+v", e)
			}
		}
	})
}
