package main

import (
	"fmt"
	"io"
)

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "jwtgate demo", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintln(stderr, "demo: not yet")
	return 1
}
