package main

import (
	"fmt"
	"io"
	"os"

	"github.com/jwtgate/jwtgate/config"
)

// schemaCmd prints the JSON Schema of the config file (to stdout, or to
// the file named by -o), generated from the config types.
func schemaCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("schema", "jwtgate schema [-o jwtgate.schema.json]", stderr)
	out := fs.String("o", "", "write the schema to this file instead of stdout")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "schema: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	data, err := config.JSONSchema()
	if err != nil {
		fmt.Fprintf(stderr, "schema: %v\n", err)
		return 1
	}
	if *out == "" {
		if _, err := stdout.Write(data); err != nil {
			fmt.Fprintf(stderr, "schema: %v\n", err)
			return 1
		}
		return 0
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		fmt.Fprintf(stderr, "schema: %v\n", err)
		return 1
	}
	return 0
}
