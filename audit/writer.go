package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/jwtgate/jwtgate/config"
)

// Output and on_write_error values.
const (
	OutputStdout = "stdout"
	OutputFile   = "file"
	OnErrorBlock = "block"
	OnErrorDrop  = "drop"
)

// Defaults of the writer's buffering.
const (
	// FlushInterval is the longest a record waits in the buffer.
	FlushInterval = 100 * time.Millisecond
	// DefaultBufferBytes is the buffer size: beyond it callers wait (block)
	// or records are dropped (drop).
	DefaultBufferBytes = 1 << 20
	// flushAtBytes wakes the writer goroutine before the interval.
	flushAtBytes = 64 << 10
	// DefaultCloseTimeout bounds how long Close retries a failing sink in
	// block mode before it counts the remaining records as dropped.
	DefaultCloseTimeout = 5 * time.Second
	backoffBase         = 10 * time.Millisecond
	backoffMax          = time.Second
	rotateRetry         = time.Second
	// seqOverhead is the most `,"seq":N` and the chain member add to a line.
	seqOverhead = len(`,"seq":`) + 20 + chainSuffixLen
)

// Errors returned by New, Flush and Close.
var (
	// ErrClosed is returned by Flush after Close.
	ErrClosed = errors.New("audit writer closed")
	// ErrInvalidConfig wraps a bad audit configuration passed to New.
	ErrInvalidConfig = errors.New("invalid audit config")
	// ErrZerologDisabled is returned by New when zerolog's global level is
	// Disabled, which would silently suppress every audit record.
	ErrZerologDisabled = errors.New("zerolog global level is disabled")
)

// Options are a Writer's non-config settings. The zero value is usable.
type Options struct {
	// Stdout is the sink for output "stdout". Defaults to os.Stdout. It is
	// never closed.
	Stdout io.Writer
	// ChainKey is the chain HMAC key. When nil and cfg.Chain is set, it is
	// read from cfg.Chain.KeyFile with ReadChainKey. It must be at least
	// MinChainKeyBytes long. The Writer keeps its own copy.
	ChainKey []byte
	// ConfigVersion is the initial config version (see SetConfigVersion).
	ConfigVersion string
	// Logger is the operational log for write errors. The zero value logs
	// nothing.
	Logger zerolog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// RotateBytes, when positive, replaces rotate.max_size_mb as the size in
	// bytes at which output "file" is rotated. It is meant for tests and
	// benchmarks that need many rotations from little data; zero (the
	// default) uses rotate.max_size_mb.
	RotateBytes int64

	// Unexported knobs for tests.
	bufferBytes   int           // buffer size; default DefaultBufferBytes
	flushInterval time.Duration // default FlushInterval
	closeTimeout  time.Duration // default DefaultCloseTimeout
}

// lineKind tells what a line in the output batch is, for loss accounting.
type lineKind uint8

const (
	kindRecord  lineKind = iota // a caller's record
	kindDropped                 // an audit_dropped report of n drops
	kindRotated                 // the audit_rotated start of a file
)

// mark is the end of one line in the output batch and the chain state
// after it.
type mark struct {
	end   int
	kind  lineKind
	n     uint64
	seq   uint64
	chain [64]byte
}

// Writer writes audit records to stdout or a rotated file. Its methods are
// safe for concurrent use. Records are encoded on the caller's goroutine
// and written by one background goroutine (see the package comment).
type Writer struct {
	// Set by New, then read-only.
	dst          io.Writer
	file         *lumberjack.Logger
	drop         bool
	key          []byte
	mac          hash.Hash
	log          zerolog.Logger
	now          func() time.Time
	enc          zerolog.Logger // encodes callers' records into enqueue
	ioEnc        zerolog.Logger // encodes the writer's own records into capture
	claimKeys    map[string]string
	maxBytes     int64
	bufCap       int
	flushEvery   time.Duration
	closeTimeout time.Duration
	startPrev    string // chain found at the end of the file at New

	configVersion atomic.Pointer[string]
	written       atomic.Uint64
	dropped       atomic.Uint64
	unreported    atomic.Uint64 // drops not yet reported by audit_dropped
	waitNanos     atomic.Uint64
	waits         atomic.Uint64

	mu        sync.Mutex
	space     sync.Cond // signalled when the writer goroutine takes the buffer
	pending   []byte    // complete unchained lines, waiting for the writer goroutine
	lens      []int     // length of each line in pending
	waiters   int       // callers waiting for space
	closed    bool      // Close was called: new records are dropped
	queuedAny bool      // a record has been handed to enqueue
	stopped   bool      // the writer goroutine has finished

	kick      chan struct{}
	flushReq  chan chan error
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// Owned by the writer goroutine.
	batch         []byte
	batchLens     []int
	out           []byte
	marks         []mark
	seq, cseq     uint64   // chain state: tentative and committed (on the sink)
	prev, cprev   [64]byte // previous chain: tentative and committed
	fileSize      int64    // bytes in the current file
	needNL        bool     // the sink ends in a partial line
	needRotated   bool     // the next batch starts with audit_rotated
	lastRotate    time.Time
	rotateRetryAt time.Time
	capture       *[]byte
	capDropped    []byte
	capRotated    []byte
	failing       bool
	failStart     time.Time
	closeDeadline time.Time
	gaveUp        bool
	batchErr      error
	flushWaiters  []chan error // Flush calls being served
	sum           [sha256.Size]byte
}

// sinkWriter receives the lines zerolog encodes for callers.
type sinkWriter struct{ w *Writer }

func (s sinkWriter) Write(p []byte) (int, error) {
	s.w.enqueue(p)
	return len(p), nil
}

// captureWriter receives the lines the writer goroutine encodes itself.
type captureWriter struct{ w *Writer }

func (c captureWriter) Write(p []byte) (int, error) {
	*c.w.capture = append((*c.w.capture)[:0], p...)
	return len(p), nil
}

// New returns a Writer for cfg and starts its background goroutine. Call
// Startup right after New and Close at shutdown.
//
// With output "file", the parent directory is created (mode 0750), the file
// is created with mode 0600, and it is rotated (lumberjack) at
// rotate.max_size_mb, keeping rotate.max_backups old files. When chaining
// and the file already ends with a record chained with the same key, the
// chain and seq continue from it; when it ends with a partial line, an
// unchained record or a record the key does not verify (the chain key was
// changed), the file is rotated first so the new file starts a clean chain.
func New(cfg config.Audit, opts Options) (*Writer, error) {
	if zerolog.GlobalLevel() == zerolog.Disabled {
		return nil, fmt.Errorf("audit: %w", ErrZerologDisabled)
	}
	output := cfg.Output
	if output == "" {
		output = config.DefaultAuditOutput
	}
	onErr := cfg.OnWriteError
	if onErr == "" {
		onErr = config.DefaultAuditOnWriteError
	}
	if onErr != OnErrorBlock && onErr != OnErrorDrop {
		return nil, fmt.Errorf("audit: on_write_error %q (want block or drop): %w", onErr, ErrInvalidConfig)
	}
	key := opts.ChainKey
	if key == nil && cfg.Chain != nil && cfg.Chain.KeyFile != "" {
		var err error
		if key, err = ReadChainKey(cfg.Chain.KeyFile); err != nil {
			return nil, err
		}
	}
	if key != nil && len(key) < MinChainKeyBytes {
		return nil, fmt.Errorf("audit: chain key of %d bytes: %w", len(key), ErrChainKeyTooShort)
	}

	w := &Writer{
		drop:         onErr == OnErrorDrop,
		log:          opts.Logger,
		now:          opts.Now,
		bufCap:       opts.bufferBytes,
		flushEvery:   opts.flushInterval,
		closeTimeout: opts.closeTimeout,
		claimKeys:    make(map[string]string, len(cfg.Claims)),
		kick:         make(chan struct{}, 1),
		flushReq:     make(chan chan error),
		closing:      make(chan struct{}),
		done:         make(chan struct{}),
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.bufCap <= 0 {
		w.bufCap = DefaultBufferBytes
	}
	if w.flushEvery <= 0 {
		w.flushEvery = FlushInterval
	}
	if w.closeTimeout <= 0 {
		w.closeTimeout = DefaultCloseTimeout
	}
	if key != nil {
		w.key = bytes.Clone(key)
		w.mac = hmac.New(sha256.New, w.key)
	}
	copy(w.prev[:], GenesisChain)
	w.cprev = w.prev
	for _, c := range cfg.Claims {
		w.claimKeys[c] = ClaimField(c)
	}
	w.SetConfigVersion(opts.ConfigVersion)
	w.space.L = &w.mu
	w.pending = make([]byte, 0, min(w.bufCap, flushAtBytes*2))
	w.batch = make([]byte, 0, cap(w.pending))
	w.enc = zerolog.New(sinkWriter{w})
	w.ioEnc = zerolog.New(captureWriter{w})

	switch output {
	case OutputStdout:
		w.dst = opts.Stdout
		if w.dst == nil {
			w.dst = os.Stdout
		}
	case OutputFile:
		if err := w.openFile(cfg, opts); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("audit: output %q (want stdout or file): %w", output, ErrInvalidConfig)
	}
	go w.run()
	return w, nil
}

// openFile sets up lumberjack and the chain state from the existing file.
func (w *Writer) openFile(cfg config.Audit, opts Options) error {
	if cfg.File == "" {
		return fmt.Errorf("audit: output file needs audit.file: %w", ErrInvalidConfig)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.File), 0o750); err != nil {
		return fmt.Errorf("audit file %s: %w", cfg.File, err)
	}
	tail, err := readTail(cfg.File)
	if err != nil {
		return err
	}
	maxMB := cfg.Rotate.MaxSizeMB
	if maxMB <= 0 {
		maxMB = config.DefaultAuditMaxSizeMB
	}
	w.maxBytes = int64(maxMB) << 20
	if opts.RotateBytes > 0 {
		w.maxBytes = opts.RotateBytes
	}
	// The Writer rotates itself, between records and before the size is
	// reached, so that it can restart seq and write audit_rotated. The
	// extra megabyte keeps lumberjack from ever rotating on its own.
	w.file = &lumberjack.Logger{
		Filename:   cfg.File,
		MaxSize:    maxMB + 1,
		MaxBackups: cfg.Rotate.MaxBackups,
	}
	w.dst = w.file
	w.fileSize = tail.size
	// Rotate before the first record when the file is already full (a
	// smaller max_size_mb than last run), ends in a partial line (a crash
	// mid-write) or, when chaining, does not end with a chained record:
	// the new file starts with an audit_rotated record that names the last
	// chain found, if any.
	if w.key != nil && tail.chained && !tail.keyMatches(w.key) {
		// The chain key changed (or the last record was edited): a chain
		// continued with this key would be verifiable with neither key.
		// Start a new file whose chain this key verifies from its first
		// record; the old files verify with the old key.
		w.log.Warn().Str("component", "audit").Str("file", cfg.File).
			Msg("audit chain key does not verify the file's last record (key changed?); starting a new chain in a new file")
		tail.chained = false
	}
	rotateNow := tail.size >= w.maxBytes || (w.key != nil && (tail.partial || !tail.chained))
	switch {
	case tail.size == 0:
	case rotateNow:
		if err := w.file.Rotate(); err != nil {
			return fmt.Errorf("audit file %s: rotate: %w", cfg.File, err)
		}
		w.lastRotate = time.Now()
		w.fileSize = 0
		w.needRotated = true
		if w.key != nil && tail.chained {
			// The audit_rotated record names tail.chain as prev_chain;
			// the startup record after it continues from audit_rotated
			// and so names nothing (prev_chain always names the record
			// right before, which is what the verifier checks).
			copy(w.prev[:], tail.chain)
			w.cprev = w.prev
		}
	case w.key != nil:
		// Continue the chain where the file ends.
		w.seq, w.cseq = tail.seq, tail.seq
		copy(w.prev[:], tail.chain)
		w.cprev = w.prev
		w.startPrev = tail.chain
	case tail.partial:
		w.needNL = true
	}
	// Open (or create) the file now so that a permission problem fails
	// startup instead of the first request.
	if _, err := w.file.Write(nil); err != nil {
		return fmt.Errorf("audit file %s: open: %w", cfg.File, err)
	}
	return nil
}

// SetConfigVersion sets the config version written in lifecycle records
// and in request records whose ConfigVersion is empty.
func (w *Writer) SetConfigVersion(v string) { w.configVersion.Store(&v) }

// ConfigVersion returns the current config version.
func (w *Writer) ConfigVersion() string { return *w.configVersion.Load() }

// Written returns how many records (including the writer's own
// audit_rotated and audit_dropped records) have been written to the sink.
func (w *Writer) Written() uint64 { return w.written.Load() }

// Dropped returns how many records were lost: dropped under
// on_write_error "drop", handed in after Close, or still unwritten when
// Close gave up on a failing sink.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// WaitNanos returns the total time callers have waited for buffer space
// while the sink was slow or failing (on_write_error "block"). It only
// grows; export it as a counter of seconds (e.g.
// jwtgate_audit_wait_seconds_total) next to Waits.
func (w *Writer) WaitNanos() uint64 { return w.waitNanos.Load() }

// Waits returns how many records had to wait for buffer space
// (on_write_error "block"). With WaitNanos it gives the mean wait.
func (w *Writer) Waits() uint64 { return w.waits.Load() }

// Request writes one request record. It does not keep r.
func (w *Writer) Request(r *Record) {
	e := w.enc.Log()
	if e == nil {
		w.lose(1)
		return
	}
	w.encodeRequest(e, r)
	e.Send()
}

// Startup writes the startup record: version, config_version, go_version,
// pid, prev_chain, and the route and provider inventory. Call it first,
// right after New: when the Writer appends to a file that ends with a
// chained record, the startup record names that record's chain as
// prev_chain (SPEC §6), which it does only as the Writer's first record.
// When New rotated the file first, the audit_rotated record before startup
// names the previous chain instead.
func (w *Writer) Startup(info StartupInfo) {
	if info.ConfigVersion != "" {
		w.SetConfigVersion(info.ConfigVersion)
	}
	if info.GoVersion == "" {
		info.GoVersion = runtime.Version()
	}
	if info.PID == 0 {
		info.PID = os.Getpid()
	}
	e := w.begin(levelInfo, EventStartup)
	if e == nil {
		return
	}
	optStr(e, "version", info.Version)
	e.Str("go_version", info.GoVersion).Int("pid", info.PID)
	w.mu.Lock()
	first := !w.queuedAny
	w.mu.Unlock()
	if first {
		// prev_chain names the record right before this one: the last
		// record of the file appended to. That holds only while startup
		// is the first record of this Writer.
		optStr(e, "prev_chain", w.startPrev)
	}
	if len(info.Routes) > 0 {
		e.Array("routes", keyArray(info.Routes))
	}
	if len(info.Providers) > 0 {
		e.Array("providers", keyArray(info.Providers))
	}
	e.Send()
}

// Shutdown writes the shutdown record: reason, uptime_ms, records, dropped.
func (w *Writer) Shutdown(info ShutdownInfo) {
	e := w.begin(levelInfo, EventShutdown)
	if e == nil {
		return
	}
	optStr(e, "reason", info.Reason)
	e.Int64("uptime_ms", info.Uptime.Milliseconds()).
		Uint64("records", info.Records).Uint64("dropped", info.Dropped).Send()
}

// ConfigReload writes a config_reload record. Its config_version is the
// version in force after the attempt: NewVersion when Result is "ok" (the
// Writer's current version is then set to it), otherwise OldVersion.
func (w *Writer) ConfigReload(info ReloadInfo) {
	level := levelInfo
	if info.Result == ResultOK && info.NewVersion != "" {
		w.SetConfigVersion(info.NewVersion)
	} else if info.Result != ResultOK {
		level = levelWarn
		if info.OldVersion != "" {
			w.SetConfigVersion(info.OldVersion)
		}
	}
	e := w.begin(level, EventConfigReload)
	if e == nil {
		return
	}
	e.Str("result", info.Result)
	optStr(e, "old_config_version", info.OldVersion)
	optStr(e, "new_config_version", info.NewVersion)
	optStr(e, "error", info.Error)
	e.Send()
}

// JWKSRefresh writes a jwks_refresh record: provider, source, trigger,
// result, error, kids_added, kids_removed, keys_skipped, keys.
func (w *Writer) JWKSRefresh(info RefreshInfo) {
	level := levelInfo
	if info.Result != ResultOK {
		level = levelWarn
	}
	e := w.begin(level, EventJWKSRefresh)
	if e == nil {
		return
	}
	e.Str("provider", info.Provider)
	optStr(e, "source", info.Source)
	optStr(e, "trigger", info.Trigger)
	e.Str("result", info.Result)
	optStr(e, "error", info.Error)
	if len(info.Added) > 0 {
		e.Array("kids_added", keyArray(info.Added))
	}
	if len(info.Removed) > 0 {
		e.Array("kids_removed", keyArray(info.Removed))
	}
	if len(info.Skipped) > 0 {
		e.Array("keys_skipped", keyArray(info.Skipped))
	}
	e.Int("keys", info.Keys).Send()
}

// begin starts a lifecycle record: time, level, event, config_version.
func (w *Writer) begin(level, event string) *zerolog.Event {
	e := w.enc.Log()
	if e == nil {
		w.lose(1)
		return nil
	}
	return head(e, w.now(), level, event).Str("config_version", w.ConfigVersion())
}

// Flush waits until every record handed in before the call is on the sink.
// It returns the sink's error when a write failed; in block mode the
// records stay queued and are retried, in drop mode they were dropped.
func (w *Writer) Flush() error {
	ch := make(chan error, 1)
	select {
	case w.flushReq <- ch:
	case <-w.done:
		return ErrClosed
	}
	return <-ch
}

// Close writes every queued record, stops the background goroutine and
// closes the file (never Stdout). Records handed in afterwards are counted
// as dropped and not written. In block mode a failing sink is retried for
// up to DefaultCloseTimeout; what is still unwritten then is counted as
// dropped and Close returns the error. Close is idempotent.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.closing)
		<-w.done
		err := w.closeErr
		if w.file != nil {
			if cerr := w.file.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("audit file %s: close: %w", w.file.Filename, cerr))
			}
		}
		w.closeErr = err
	})
	return w.closeErr
}

// lose counts n records that will never be written.
func (w *Writer) lose(n uint64) {
	w.dropped.Add(n)
	w.unreported.Add(n)
}

// signal wakes the writer goroutine without blocking.
func (w *Writer) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// enqueue appends one complete line ("{…}\n") to the buffer. In block mode
// it waits for space; in drop mode a full buffer drops the line.
func (w *Writer) enqueue(p []byte) {
	if len(p) < 2 || p[len(p)-2] != '}' || p[len(p)-1] != '\n' {
		w.lose(1)
		return
	}
	w.mu.Lock()
	if w.closed || w.stopped {
		w.mu.Unlock()
		w.lose(1)
		return
	}
	if len(w.pending) > 0 && len(w.pending)+len(p) > w.bufCap {
		if w.drop {
			w.mu.Unlock()
			w.lose(1)
			return
		}
		start := time.Now()
		w.waits.Add(1)
		w.waiters++
		for len(w.pending) > 0 && len(w.pending)+len(p) > w.bufCap && !w.stopped {
			w.signal()
			w.space.Wait()
		}
		w.waiters--
		w.waitNanos.Add(uint64(time.Since(start)))
		if w.stopped {
			w.mu.Unlock()
			w.lose(1)
			return
		}
	}
	w.queuedAny = true
	w.pending = append(w.pending, p...)
	w.lens = append(w.lens, len(p))
	if len(w.pending) >= flushAtBytes {
		w.signal()
	}
	w.mu.Unlock()
}

// run is the writer goroutine. It exits when Close has drained the buffer.
func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(w.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if w.hasWork() {
				_ = w.drain() // errors are logged and counted by writeOut
			}
		case <-w.kick:
			_ = w.drain()
		case ch := <-w.flushReq:
			w.flushWaiters = append(w.flushWaiters, ch)
			w.answerFlushes(w.drain())
		case <-w.closing:
			w.closeErr = w.finish()
			return
		}
	}
}

// hasWork reports whether a drain would write anything.
func (w *Writer) hasWork() bool {
	w.mu.Lock()
	n := len(w.lens)
	w.mu.Unlock()
	return n > 0 || w.needRotated || w.unreported.Load() > 0
}

// finish drains until nothing is pending, or until the sink is given up.
func (w *Writer) finish() error {
	if w.closeDeadline.IsZero() {
		w.closeDeadline = time.Now().Add(w.closeTimeout)
	}
	var err error
	for {
		if derr := w.drain(); derr != nil {
			err = derr
			if w.drop {
				w.gaveUp = true
			}
		}
		w.mu.Lock()
		idle := len(w.lens) == 0 && w.waiters == 0
		if (idle && w.unreported.Load() == 0) || w.gaveUp {
			w.stopped = true
			left := uint64(len(w.lens))
			w.pending, w.lens = w.pending[:0], w.lens[:0]
			w.space.Broadcast()
			w.mu.Unlock()
			if left > 0 {
				w.lose(left)
			}
			return err
		}
		w.mu.Unlock()
		if idle {
			// Callers are between waking up and appending.
			time.Sleep(time.Millisecond)
		}
	}
}

// drain takes everything pending, chains it and writes it.
func (w *Writer) drain() error {
	w.mu.Lock()
	w.batch, w.pending = w.pending, w.batch[:0]
	w.batchLens, w.lens = w.lens, w.batchLens[:0]
	w.space.Broadcast()
	w.mu.Unlock()

	w.batchErr = nil
	if w.needRotated {
		w.needRotated = false
		w.emitRotated()
	}
	if n := w.unreported.Swap(0); n > 0 {
		w.emit(w.encodeDropped(n), kindDropped, n)
	}
	off := 0
	for _, n := range w.batchLens {
		w.emit(w.batch[off:off+n], kindRecord, 0)
		off += n
	}
	w.writeOut()
	return w.batchErr
}

// encodeDropped encodes an audit_dropped record.
func (w *Writer) encodeDropped(n uint64) []byte {
	w.capture = &w.capDropped
	e := w.ioEnc.Log()
	if e == nil {
		w.capDropped = w.handLine(w.capDropped, levelWarn, EventAuditDropped, "dropped",
			strconv.AppendUint(nil, n, 10))
		return w.capDropped
	}
	head(e, w.now(), levelWarn, EventAuditDropped).
		Str("config_version", w.ConfigVersion()).Uint64("dropped", n).Send()
	return w.capDropped
}

// emitRotated emits the audit_rotated record that starts a file.
func (w *Writer) emitRotated() {
	var prevChain []byte
	if w.key != nil && string(w.prev[:]) != GenesisChain {
		prevChain = w.prev[:]
	}
	w.capture = &w.capRotated
	if e := w.ioEnc.Log(); e != nil {
		head(e, w.now(), levelInfo, EventAuditRotated).Str("config_version", w.ConfigVersion())
		if prevChain != nil {
			e.Bytes("prev_chain", prevChain)
		}
		e.Send()
	} else {
		var raw []byte
		if prevChain != nil {
			raw = append(append(append(raw, '"'), prevChain...), '"')
		}
		w.capRotated = w.handLine(w.capRotated, levelInfo, EventAuditRotated, "prev_chain", raw)
	}
	w.emit(w.capRotated, kindRotated, 0)
}

// handLine builds one of the writer's own records without zerolog, for
// when zerolog's global level suppresses every event. extraRaw, when not
// nil, is the JSON value of extraKey.
func (w *Writer) handLine(dst []byte, level, event, extraKey string, extraRaw []byte) []byte {
	cv, _ := json.Marshal(w.ConfigVersion()) // a string always marshals
	dst = append(dst[:0], `{"time":"`...)
	dst = appendTime(dst, w.now())
	dst = append(dst, `","level":"`+level+`","event":"`+event+`","config_version":`...)
	dst = append(dst, cv...)
	if extraRaw != nil {
		dst = append(dst, `,"`+extraKey+`":`...)
		dst = append(dst, extraRaw...)
	}
	return append(dst, '}', '\n')
}

// emit appends one line to the output batch, adding seq and chain when
// chaining, and rotates the file first when the line would not fit.
func (w *Writer) emit(line []byte, kind lineKind, n uint64) {
	if w.file != nil {
		used := w.fileSize + int64(len(w.out))
		est := int64(len(line))
		if w.key != nil {
			est += int64(seqOverhead)
		}
		if used > 0 && used+est > w.maxBytes && !time.Now().Before(w.rotateRetryAt) {
			w.rotate()
		}
	}
	if w.needNL {
		w.out = append(w.out, '\n')
		w.needNL = false
	}
	start := len(w.out)
	w.out = append(w.out, line[:len(line)-2]...) // without "}\n"
	m := mark{kind: kind, n: n}
	if w.key != nil {
		w.seq++
		w.out = append(w.out, `,"seq":`...)
		w.out = strconv.AppendUint(w.out, w.seq, 10)
		w.out = append(w.out, '}')
		w.mac.Reset()
		w.mac.Write(w.prev[:])
		w.mac.Write([]byte{'\n'})
		w.mac.Write(w.out[start:])
		hex.Encode(w.prev[:], w.mac.Sum(w.sum[:0]))
		w.out = w.out[:len(w.out)-1]
		w.out = append(w.out, `,"chain":"`...)
		w.out = append(w.out, w.prev[:]...)
		w.out = append(w.out, '"', '}')
		m.seq, m.chain = w.seq, w.prev
	} else {
		w.out = append(w.out, '}')
	}
	w.out = append(w.out, '\n')
	m.end = len(w.out)
	w.marks = append(w.marks, m)
}

// rotate writes what is batched, rotates the file, restarts seq and emits
// the audit_rotated record, whose P is the previous file's last chain.
func (w *Writer) rotate() {
	w.writeOut()
	// lumberjack names backups by the millisecond; two rotations in one
	// millisecond would overwrite a backup.
	for time.Since(w.lastRotate) < 2*time.Millisecond {
		time.Sleep(time.Millisecond)
	}
	if err := w.file.Rotate(); err != nil {
		w.log.Error().Str("component", "audit").Err(err).Msg("audit file rotation failed; writing on in the current file")
		w.rotateRetryAt = time.Now().Add(rotateRetry)
		return
	}
	w.lastRotate = time.Now()
	w.fileSize = 0
	w.needNL = false
	w.seq, w.cseq = 0, 0
	w.cprev = w.prev
	w.emitRotated()
}

// writeOut writes the output batch with one Write of complete lines. On
// failure it retries with backoff in block mode (answering Flush calls
// with the error meanwhile, and giving up only after Close's deadline);
// in drop mode it drops the unwritten lines.
func (w *Writer) writeOut() {
	if len(w.out) == 0 {
		return
	}
	written := 0
	backoff := backoffBase
	for {
		n, err := w.dst.Write(w.out[written:])
		if n < 0 || n > len(w.out)-written {
			n = 0
		}
		written += n
		if err == nil && written < len(w.out) {
			err = io.ErrShortWrite
		}
		if err == nil {
			break
		}
		w.batchErr = fmt.Errorf("audit write: %w", err)
		if !w.failing {
			w.failing, w.failStart = true, time.Now()
		}
		w.log.Error().Str("component", "audit").Err(err).Int("unwritten_bytes", len(w.out)-written).
			Bool("dropping", w.drop).Msg("audit write failed")
		if w.drop || w.gaveUp {
			w.discard(written)
			w.pause(backoff)
			return
		}
		w.answerFlushes(w.batchErr)
		if !w.pause(backoff) {
			w.gaveUp = true
			w.log.Error().Str("component", "audit").Msg("audit sink still failing at close; dropping the rest")
			w.discard(written)
			return
		}
		backoff = min(backoff*2, backoffMax)
	}
	if w.failing {
		w.failing = false
		w.log.Info().Str("component", "audit").Dur("failed_for", time.Since(w.failStart)).Msg("audit writes resumed")
	}
	w.commit(len(w.marks) - 1)
	w.fileSize += int64(len(w.out))
	w.out, w.marks = w.out[:0], w.marks[:0]
}

// commit records lines marks[:i+1] as written.
func (w *Writer) commit(i int) {
	if i < 0 {
		return
	}
	w.written.Add(uint64(i + 1))
	if w.key != nil {
		w.cseq, w.cprev = w.marks[i].seq, w.marks[i].chain
	}
}

// discard accounts for a failed write of which the first written bytes
// reached the sink: complete lines count as written, the rest as dropped,
// and the chain goes back to the last written line so that the next line
// chains from what is actually on the sink.
func (w *Writer) discard(written int) {
	last, lastEnd := -1, 0
	for i, m := range w.marks {
		if m.end <= written {
			last, lastEnd = i, m.end
		}
	}
	w.commit(last)
	w.fileSize += int64(written)
	if written > lastEnd {
		w.needNL = true // a partial line is on the sink; end it
	}
	var lost uint64
	for _, m := range w.marks[last+1:] {
		switch m.kind {
		case kindRecord:
			lost++
		case kindDropped:
			w.unreported.Add(m.n)
		case kindRotated:
			w.needRotated = true
		}
	}
	if lost > 0 {
		w.lose(lost)
	}
	w.seq, w.prev = w.cseq, w.cprev
	w.out, w.marks = w.out[:0], w.marks[:0]
}

// answerFlushes replies to the Flush calls being served.
func (w *Writer) answerFlushes(err error) {
	for _, ch := range w.flushWaiters {
		ch <- err
	}
	w.flushWaiters = w.flushWaiters[:0]
}

// pause waits d before a retry, answering Flush calls with the current
// error. It returns false when the close deadline has passed (or, in drop
// mode, when Close has started).
func (w *Writer) pause(d time.Duration) bool {
	closing := w.closing
	if !w.closeDeadline.IsZero() {
		closing = nil
		left := time.Until(w.closeDeadline)
		if left <= 0 {
			return false
		}
		d = min(d, left)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return w.closeDeadline.IsZero() || time.Now().Before(w.closeDeadline)
		case ch := <-w.flushReq:
			ch <- w.batchErr
		case <-closing:
			closing = nil
			w.closeDeadline = time.Now().Add(w.closeTimeout)
			if w.drop {
				return false
			}
			t.Reset(min(d, w.closeTimeout))
		}
	}
}
