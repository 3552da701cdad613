package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// errBodyIdle marks a request body read that was cut off because the
// client sent nothing for server.body_idle_timeout (a slow-body attack, or
// a client that stalled). upstreamError maps it to client_closed.
var errBodyIdle = errors.New("request body idle")

// idleBody bounds how long a request body may send nothing
// (server.body_idle_timeout): a slow-body client, one that announces a body
// and then trickles it or stops, would otherwise hold a connection, a
// handler goroutine and an upstream request for as long as it likes (the
// server's ReadHeaderTimeout ends once the headers are in, and
// ResponseHeaderTimeout only starts once the body has been sent).
//
// The connection's read deadline runs only while a Read waits for the
// client: it is set to now+timeout before each Read and cleared after it
// returns. So a long upload that keeps sending is never cut off, however
// long it takes in total, and an upstream that is slow to take the body
// (the transport not calling Read) does not count against the client: on
// HTTP/2 a deadline left running between reads would close the stream's
// body. Clearing after every Read also hands the connection back to the
// server's own deadlines (idle_timeout) once the body is done.
//
// After Close no deadline is touched again: the ReverseProxy closes the
// body before its handler returns, and a ResponseWriter must not be used
// after that, although the transport may still be inside a Read.
type idleBody struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController
	timeout time.Duration

	mu     sync.Mutex
	closed bool // Close was called: the ResponseWriter may be gone
	off    bool // the ResponseWriter cannot set deadlines, or the body is done
	idled  bool // a Read was cut off by the deadline
}

// idleBody wraps body so that it is cut off after
// server.body_idle_timeout without a byte; zero disables the bound.
func (g *Gateway) idleBody(w http.ResponseWriter, body io.ReadCloser) io.ReadCloser {
	d := g.cfg.Server.BodyIdleTimeout
	if d <= 0 {
		return body
	}
	return &idleBody{rc: body, ctl: http.NewResponseController(w), timeout: d}
}

// Read reads from the client with the idle deadline running.
func (b *idleBody) Read(p []byte) (int, error) {
	if !b.setDeadline(true) {
		return b.rc.Read(p)
	}
	n, err := b.rc.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline stays in the past: the connection is finished,
		// and any further read must fail at once, not wait.
		b.mu.Lock()
		b.idled, b.off = true, true
		b.mu.Unlock()
		return n, fmt.Errorf("%w: no byte for %s: %w", errBodyIdle, b.timeout, err)
	}
	b.setDeadline(false)
	if errors.Is(err, io.EOF) {
		// The body is complete; no deadline after EOF. On HTTP/1.1 the
		// server then waits for the client's next request (or hang-up) in
		// the background, and a deadline there would cancel the request
		// still in flight.
		b.mu.Lock()
		b.off = true
		b.mu.Unlock()
	}
	return n, err
}

// setDeadline starts (on) or clears the connection's read deadline, unless
// the body is closed or done or deadlines are unsupported; it reports
// whether it did. A ResponseWriter that cannot set deadlines
// (http.ErrNotSupported) leaves the body without a bound.
func (b *idleBody) setDeadline(on bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.off {
		return false
	}
	var t time.Time
	if on {
		t = time.Now().Add(b.timeout)
	}
	if err := b.ctl.SetReadDeadline(t); err != nil {
		b.off = true
		return false
	}
	return true
}

// Close closes the body. No deadline is set afterwards.
func (b *idleBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.rc.Close()
}

// timedOut reports whether a Read was cut off by the idle deadline.
func (b *idleBody) timedOut() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.idled
}

// bodyIdled reports whether the request body was cut off by
// server.body_idle_timeout; the connection is then dropped without an
// answer (the client stopped sending, the record says client_closed).
func (b *countingBody) bodyIdled() bool {
	if b == nil {
		return false // the request had no body
	}
	ib, ok := b.rc.(*idleBody)
	return ok && ib.timedOut()
}
