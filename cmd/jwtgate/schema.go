package main

import (
	"fmt"
	"io"
)

// schemaCmd prints the JSON Schema of the config file.
func schemaCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("schema", "jwtgate schema > jwtgate.schema.json", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintln(stderr, "schema: not implemented yet")
	return 1
}
