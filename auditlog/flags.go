package auditlog

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Exit codes shared by the subcommands (SPEC §1).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// newFlagSet returns a ContinueOnError flag set writing to stderr, whose usage
// text is the given synopsis followed by the flag defaults.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses args with fs, allowing flags after positional arguments
// (`audit tail FILE --json`): it parses, takes the first remaining argument as
// a positional one, and parses the rest again. A "--" ends flag parsing.
// It returns the positional arguments in order, or the flag package's error
// (flag.ErrHelp for -h).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageExit maps a parse error to an exit code: 0 for -h (the flag package
// has printed the usage), 2 otherwise (it has printed the problem and usage).
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// parseWhen reads a --since/--until value: a duration before now ("90m",
// "24h", and "7d" for days) or an RFC 3339 time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty time")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= 0 && n <= 36500 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (24h, 90m, 7d) nor an RFC 3339 time", s)
	}
	if d < 0 {
		d = -d
	}
	return now.Add(-d), nil
}

// whenFlag is a flag.Value for --since/--until that remembers the raw text;
// it is resolved against "now" after parsing.
type whenFlag struct {
	raw string
	set bool
}

func (w *whenFlag) String() string { return w.raw }

func (w *whenFlag) Set(s string) error {
	if _, err := parseWhen(s, time.Now()); err != nil {
		return err
	}
	w.raw, w.set = s, true
	return nil
}

// at resolves the flag against now; the zero time when the flag was not set.
func (w *whenFlag) at(now time.Time) time.Time {
	if !w.set {
		return time.Time{}
	}
	t, _ := parseWhen(w.raw, now)
	return t
}
