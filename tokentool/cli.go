package tokentool

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes shared by every command (SPEC §1).
const (
	exitOK      = 0 // success
	exitFailure = 1 // a failure the command reports
	exitUsage   = 2 // bad usage: unknown flag, missing or invalid argument
)

// command wraps a flag.FlagSet with jwtgate's usage conventions: -h/--help
// prints the usage on stdout and exits 0; a parse error prints one line on
// stderr and exits 2.
type command struct {
	name     string // "jwtgate token mint"
	synopsis string // usage line without the leading "Usage: "
	about    string // description and examples, printed after the synopsis
	fs       *flag.FlagSet
	stdout   io.Writer
	stderr   io.Writer
}

// newCommand returns a command whose flag set reports nothing by itself;
// parse decides what to print.
func newCommand(name, synopsis, about string, stdout, stderr io.Writer) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &command{name: name, synopsis: synopsis, about: about, fs: fs, stdout: stdout, stderr: stderr}
	// The flag package prints Usage on every parse error; we print a
	// one-line reason instead, and the full usage only for -h.
	fs.Usage = func() {}
	return c
}

// printUsage writes the synopsis, the description and the flag defaults.
func (c *command) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags (-flag and --flag are the same):\n", c.synopsis, strings.TrimSpace(c.about))
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(c.stderr)
}

// parse parses flags that may be interleaved with positional arguments
// ("inspect TOKEN --json" works like "inspect --json TOKEN"); everything
// after "--" is positional. When done is true the command must return code.
func (c *command) parse(args []string) (positional []string, code int, done bool) {
	// Silence the flag package's own error line: we print our own.
	c.fs.SetOutput(io.Discard)
	defer c.fs.SetOutput(c.stderr)
	for {
		err := c.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(c.stdout)
			return nil, exitOK, true
		}
		if err != nil {
			return nil, c.usageErr("%v", err), true
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			return positional, exitOK, false
		}
		// flag.Parse consumed a "--" terminator when the argument just
		// before rest is "--": everything left is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), exitOK, false
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// isSet reports whether the named flag was given on the command line.
func (c *command) isSet(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// usageErr prints a one-line usage error and returns exitUsage.
func (c *command) usageErr(format string, a ...any) int {
	fmt.Fprintf(c.stderr, "%s: %s (see %s -h)\n", c.name, fmt.Sprintf(format, a...), c.name)
	return exitUsage
}

// fail prints a one-line failure and returns exitFailure.
func (c *command) fail(err error) int {
	fmt.Fprintf(c.stderr, "%s: %v\n", c.name, err)
	return exitFailure
}
