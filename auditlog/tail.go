package auditlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// DefaultPollInterval is how often `audit tail -f` checks the file for new
// lines and for rotation.
const DefaultPollInterval = 200 * time.Millisecond

// filter selects records for tail. An empty string field does not filter; a
// set one excludes every record that lacks the member or has another value.
type filter struct {
	decision, reason, route, sub string
	since                        time.Time
}

// match reports whether r passes every set filter.
func (f *filter) match(r *record) bool {
	for _, c := range [...]struct{ key, want string }{
		{"decision", f.decision}, {"reason", f.reason}, {"route", f.route}, {"sub", f.sub},
	} {
		if c.want == "" {
			continue
		}
		if got, ok := r.strOK(c.key); !ok || got != c.want {
			return false
		}
	}
	if !f.since.IsZero() {
		t, ok := r.time()
		if !ok || t.Before(f.since) {
			return false
		}
	}
	return true
}

// tailOptions configures one tail run.
type tailOptions struct {
	follow bool
	json   bool
	last   int // print only the last N matching lines first; < 0: all
	filter filter
	human  humanFormatter
	poll   time.Duration
}

// tailer prints the lines of one file as they are read.
type tailer struct {
	ctx    context.Context
	opts   tailOptions
	name   string
	out    *bufio.Writer
	stderr io.Writer
	lineNo int

	collecting bool     // gather output in ring instead of printing (-n)
	ring       []string // the last opts.last entries, oldest first

	f   *os.File
	off int64
	sp  splitter
	buf []byte
}

// runTail prints the matching lines of name, then follows it when
// opts.follow is set, until ctx is done.
func runTail(ctx context.Context, name string, opts tailOptions, stdout, stderr io.Writer) error {
	if opts.poll <= 0 {
		opts.poll = DefaultPollInterval
	}
	t := &tailer{
		ctx:        ctx,
		opts:       opts,
		name:       name,
		out:        bufio.NewWriter(stdout),
		stderr:     stderr,
		collecting: opts.last >= 0,
		sp:         splitter{max: maxLineBytes},
		buf:        make([]byte, 64<<10),
	}
	defer t.close()
	f, err := os.Open(name)
	switch {
	case err == nil:
		t.f = f
	case opts.follow && errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "jwtgate audit tail: %s does not exist yet; waiting for it\n", name)
	default:
		return fmt.Errorf("tail: %w", err)
	}
	if err := t.drain(); err != nil {
		return err
	}
	if !opts.follow {
		if err := t.sp.flush(t.line); err != nil {
			return err
		}
	}
	t.printRing()
	if err := t.out.Flush(); err != nil || !opts.follow {
		return err
	}
	return t.follow(ctx)
}

// follow polls the file like `tail -F`: new lines are printed as they are
// completed; a rotation (a different file at the path) or a truncation
// (size below what was read) makes it reopen or rewind.
func (t *tailer) follow(ctx context.Context) error {
	tick := time.NewTicker(t.opts.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := t.poll(); err != nil {
			return err
		}
		if err := t.out.Flush(); err != nil {
			return err
		}
	}
}

// poll handles one tick of follow mode.
func (t *tailer) poll() error {
	if err := t.drain(); err != nil {
		return err
	}
	fi, err := os.Stat(t.name)
	if err != nil {
		return nil // between a rename and the new file: keep waiting
	}
	if t.f == nil {
		return t.reopen()
	}
	cur, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("tail: %s: %w", t.name, err)
	}
	switch {
	case !os.SameFile(fi, cur):
		// Rotated: finish the old file (lines written before the rename),
		// then switch to the new one.
		if err := t.drain(); err != nil {
			return err
		}
		if err := t.sp.flush(t.line); err != nil {
			return err
		}
		fmt.Fprintf(t.stderr, "jwtgate audit tail: %s was rotated; following the new file\n", t.name)
		return t.reopen()
	case fi.Size() < t.off:
		fmt.Fprintf(t.stderr, "jwtgate audit tail: %s was truncated; reading from the start\n", t.name)
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("tail: %s: %w", t.name, err)
		}
		t.off = 0
		t.sp = splitter{max: maxLineBytes}
		return t.drain()
	}
	return nil
}

// reopen switches to the file now at the path.
func (t *tailer) reopen() error {
	t.close()
	f, err := os.Open(t.name)
	if err != nil {
		return nil // gone again; the next tick retries
	}
	t.f, t.off, t.lineNo = f, 0, 0
	t.sp = splitter{max: maxLineBytes}
	return t.drain()
}

func (t *tailer) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// drain reads the open file to its current end.
func (t *tailer) drain() error {
	if t.f == nil {
		return nil
	}
	for t.ctx.Err() == nil {
		n, err := t.f.Read(t.buf)
		if n > 0 {
			t.off += int64(n)
			if ferr := t.sp.feed(t.buf[:n], t.line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tail: read %s: %w", t.name, err)
		}
	}
	return nil // interrupted: exit quietly, as tail does on Ctrl-C
}

// line handles one complete line: filter, format, print (or collect). A
// line holding a record cut short followed by a whole one (a writer that
// died mid-record, then restarted) shows as an unparseable part and the
// record.
func (t *tailer) line(line []byte, size int, tooLong bool) error {
	t.lineNo++
	if tooLong {
		t.unparseable(size)
		return nil
	}
	rec, err := parseRecord(line)
	if err != nil {
		start, r, ok := recoverRecord(line)
		if !ok {
			t.unparseable(size)
			return nil
		}
		t.unparseable(start)
		rec, line = r, line[start:]
	}
	if !t.opts.filter.match(rec) {
		return nil
	}
	if t.opts.json {
		t.emit(string(line)) // the raw line, byte for byte
		return nil
	}
	t.emit(t.opts.human.format(rec))
	return nil
}

// unparseable reports size bytes that are not a record: a marker line in
// the human view, a note on stderr with --json (stdout keeps only records).
func (t *tailer) unparseable(size int) {
	if t.opts.json {
		fmt.Fprintf(t.stderr, "jwtgate audit tail: %s:%d: skipped unparseable line (%d bytes)\n", t.name, t.lineNo, size)
		return
	}
	t.emit(t.opts.human.unparseable(size))
}

// emit prints one output line, or keeps it among the last N while the
// initial -n pass is collecting.
func (t *tailer) emit(s string) {
	if !t.collecting {
		t.out.WriteString(s)
		t.out.WriteByte('\n')
		return
	}
	if t.opts.last == 0 {
		return
	}
	if len(t.ring) == t.opts.last {
		copy(t.ring, t.ring[1:])
		t.ring = t.ring[:len(t.ring)-1]
	}
	t.ring = append(t.ring, s)
}

// printRing ends the collecting phase and prints what it kept.
func (t *tailer) printRing() {
	if !t.collecting {
		return
	}
	t.collecting = false
	for _, s := range t.ring {
		t.emit(s)
	}
	t.ring = nil
}

const tailUsage = `Usage: jwtgate audit tail [-f] [--decision D] [--reason R] [--route R] [--sub S]
                         [--since 1h|RFC3339] [--json] [-n N] FILE

Prints the records of an audit log, one aligned line each (or the raw JSON
lines with --json), filtered; with -f keeps following the file like tail -F,
across rotations. Filters on a field a record lacks exclude that record.`

// TailCommand runs `jwtgate audit tail`. It returns the exit code: 0 on
// success (also when ctx is cancelled while following), 1 when the file
// cannot be read, 2 for bad usage.
func TailCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit tail", tailUsage, stderr)
	var (
		opts  tailOptions
		since whenFlag
	)
	fs.BoolVar(&opts.follow, "f", false, "follow the file as it grows and across rotations")
	fs.BoolVar(&opts.follow, "follow", false, "same as -f")
	fs.BoolVar(&opts.json, "json", false, "print the matching raw JSON lines unchanged")
	fs.IntVar(&opts.last, "n", -1, "print only the last `N` matching records (default: all)")
	fs.StringVar(&opts.filter.decision, "decision", "", "only records with this `decision` (allow, deny, anonymous, public)")
	fs.StringVar(&opts.filter.reason, "reason", "", "only records with this `reason` code")
	fs.StringVar(&opts.filter.route, "route", "", "only records for this `route`")
	fs.StringVar(&opts.filter.sub, "sub", "", "only records with this `subject`")
	fs.Var(&since, "since", "only records at or after this `time`: a duration ago (1h, 7d) or RFC 3339")
	files, err := parseArgs(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "jwtgate audit tail: need exactly one FILE, got %d\n", len(files))
		fs.Usage()
		return exitUsage
	}
	opts.filter.since = since.at(time.Now())
	opts.human = humanFormatter{color: useColor(stdout, os.Getenv("NO_COLOR")), loc: time.Local}
	if err := runTail(ctx, files[0], opts, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "jwtgate audit tail: %v\n", err)
		return exitFailure
	}
	return exitOK
}
