package model

import "fmt"

// jsonKind names the JSON type of a decoded value for messages ("a
// string", "a boolean", ...).
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("a %T", v)
}

// jsonValue is v as it appears in the file: strings quoted.
func jsonValue(v any) any {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return v
}
