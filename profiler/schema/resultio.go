package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ResultFile is the name of result.json in a run's folder.
const ResultFile = "result.json"

// WriteResult writes r as dir/result.json atomically: to a temporary file in
// dir that is synced and then renamed over result.json, so a crash leaves
// the old file or the new one, never half of one. A zero Schema is set to
// ResultSchema.
func WriteResult(dir string, r *Result) error {
	if r == nil {
		return errors.New("write result: nil result")
	}
	if r.Schema == 0 {
		r.Schema = ResultSchema
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(dir, ".result-*.json.tmp")
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write result %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync result %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close result %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	final := filepath.Join(dir, ResultFile)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return nil
}

// ReadResult reads a result.json. It refuses a schema newer than
// ResultSchema (upgrade memval to read it) and a missing or invalid one;
// errors name the file and the field. Unknown fields are ignored.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	r, err := decodeResult(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func decodeResult(b []byte) (*Result, error) {
	var head struct {
		Schema *json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, jsonError(b, err)
	}
	if head.Schema == nil {
		return nil, errors.New("field schema: missing; not a memval result.json")
	}
	var schema int
	if err := json.Unmarshal(*head.Schema, &schema); err != nil {
		return nil, fmt.Errorf("field schema: got %s, want an integer", bytes.TrimSpace(*head.Schema))
	}
	if schema > ResultSchema {
		return nil, fmt.Errorf("field schema: version %d is newer than this memval reads (%d): upgrade memval", schema, ResultSchema)
	}
	if schema < 1 {
		return nil, fmt.Errorf("field schema: got %d, want 1 to %d", schema, ResultSchema)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, jsonError(b, err)
	}
	return &r, nil
}

// jsonError names the field (or the line and column) of a decoding error.
func jsonError(b []byte, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("field %s: got JSON %s, want %s: %w", field, te.Value, te.Type, err)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(b, se.Offset)
		return fmt.Errorf("line %d, column %d: invalid JSON: %w", line, col, err)
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

func lineCol(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
