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
	// Path is the YAML path of the field, e.g. "routes[2].auth.mode".
	Path string
	// Msg says what is wrong, then the rule or the fix.
	Msg string
	// Warning marks a problem that does not fail validation.
	Warning bool
}

// Error returns "path: message".
func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// Error is returned by Load and Parse when the config has problems. It
// lists every error in document order (warnings are in Config.Warnings).
type Error struct {
	// File is the config file's path; empty for Parse.
	File string
	// Problems are the errors, each naming its YAML path.
	Problems []FieldError
}

// Error returns one "path: message" line per problem.
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
