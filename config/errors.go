package config

import (
	"errors"
	"strings"
)

// ErrNotFound is wrapped by Load when the config file does not exist, so
// callers can tell an absent file from an invalid one.
var ErrNotFound = errors.New("config file not found")

// A FieldError is one configuration problem at a YAML path such as
// "routes[2].auth.providers[0]". Warnings do not fail validation.
type FieldError struct {
	// Path is the YAML path of the field, e.g. "routes[2].auth.mode". It is
	// empty for problems of the whole file (syntax errors, an empty file,
	// several documents).
	Path string
	// Msg says what is wrong, then the rule or the fix.
	Msg string
	// Warning marks a problem that does not fail validation.
	Warning bool
}

// Error returns "path: message", or only the message when Path is empty.
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Error is returned by Load and Parse when the config has problems. It
// lists every error in document order; warnings found alongside are kept in
// Warnings (on success they are in Config.Warnings instead).
type Error struct {
	// File is the config file's path; empty for Parse.
	File string
	// Problems are the errors, each naming its YAML path, in document order.
	Problems []FieldError
	// Warnings are the problems found at the same time that alone would not
	// fail validation, in document order. Empty when the YAML itself did
	// not decode.
	Warnings []FieldError
}

// Error returns one "path: message" line per problem (warnings excluded).
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString("config " + e.File + ": ")
	}
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}
