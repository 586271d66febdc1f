package main

import "strings"

// orList writes choices as prose for help texts and errors:
// "a, b or c". The lists come from one place (model.Precisions and the
// others), so that every flag says the same.
func orList(choices []string) string {
	switch len(choices) {
	case 0:
		return ""
	case 1:
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}
