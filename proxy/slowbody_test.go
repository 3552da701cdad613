package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/config"
)

// bodyIdleTimeout is server.body_idle_timeout in the slow-body tests.
const bodyIdleTimeout = 300 * time.Millisecond

// bodyOutcome is what the slow-body backend's handler saw of one request
// body: the bytes read and the error that ended the read (nil at EOF).
type bodyOutcome struct {
	n   int64
	err error
}

// slowBodyBackend is an upstream that reads each request body to the end
// and reports, per path, what it read and how the read ended. Under
// /public/lazy it waits 600ms (twice the idle timeout) before it starts
// reading: an upstream that is slow to take a body.
type slowBodyBackend struct {
	*httptest.Server
	mu   sync.Mutex
	done map[string]chan bodyOutcome
}

func newSlowBodyBackend(t *testing.T) *slowBodyBackend {
	b := &slowBodyBackend{done: map[string]chan bodyOutcome{}}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/public/lazy") {
			time.Sleep(600 * time.Millisecond)
		}
		n, err := io.Copy(io.Discard, r.Body)
		b.outcome(r.URL.Path) <- bodyOutcome{n, err}
		if err == nil {
			_, _ = io.WriteString(w, "got "+strconv.FormatInt(n, 10))
		}
	}))
	t.Cleanup(b.Close)
	return b
}

// outcome is the channel that receives path's outcome.
func (b *slowBodyBackend) outcome(path string) chan bodyOutcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.done[path]
	if !ok {
		c = make(chan bodyOutcome, 1)
		b.done[path] = c
	}
	return c
}

// wait returns what the backend read for path, failing the test when its
// handler has not finished within d.
func (b *slowBodyBackend) wait(t *testing.T, path string, d time.Duration) bodyOutcome {
	t.Helper()
	select {
	case o := <-b.outcome(path):
		return o
	case <-time.After(d):
		t.Fatalf("backend request %s still running after %v", path, d)
		return bodyOutcome{}
	}
}

// slowBodyEnv is an env whose gateway has server.body_idle_timeout 300ms
// and whose "public" route (auth off) forwards to a slowBodyBackend. tls
// is the same gateway served over TLS with HTTP/2.
type slowBodyEnv struct {
	*env
	be  *slowBodyBackend
	tls *httptest.Server
}

func newSlowBodyEnv(t *testing.T) *slowBodyEnv {
	t.Helper()
	e := newEnv(t)
	be := newSlowBodyBackend(t)
	text := strings.Replace(string(e.cfgText), `server: {address: "127.0.0.1:0", `,
		fmt.Sprintf(`server: {address: "127.0.0.1:0", body_idle_timeout: %s, `, bodyIdleTimeout), 1)
	text = strings.ReplaceAll(text, strconv.Quote(e.backend.URL), strconv.Quote(be.URL))
	cfg, err := config.Parse([]byte(text), t.TempDir())
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	if cfg.Server.BodyIdleTimeout != bodyIdleTimeout {
		t.Fatalf("body_idle_timeout = %v, want %v: the test config was not rewritten", cfg.Server.BodyIdleTimeout, bodyIdleTimeout)
	}
	old := e.handler.Current()
	g, err := Build(e.ctx, cfg, e.deps, old)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	e.handler.Swap(g)
	old.Retire(g)
	ts := httptest.NewUnstartedServer(e.handler)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &slowBodyEnv{env: e, be: be, tls: ts}
}

// recordsFor returns the request records for path.
func (e *slowBodyEnv) recordsFor(path string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for _, r := range e.requestRecords() {
		if r["path"] == path {
			out = append(out, r)
		}
	}
	return out
}

// h2Client is an HTTP/2 client of the TLS gateway.
func (e *slowBodyEnv) h2Client(t *testing.T) *http.Client {
	c := e.tls.Client()
	tr := c.Transport.(*http.Transport)
	tr.ForceAttemptHTTP2 = true
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, NextProtos: []string{"h2"}}
	c.Timeout = 5 * time.Second
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// TestSlowBodyCutOff pins issue 5 item 3 (slow bodies, the R.U.D.Y. /
// slow POST attack): a client that announces a 1000-byte body, sends 10
// bytes and stalls is cut off once server.body_idle_timeout (300ms) passes
// without a byte. Its connection (HTTP/1.1) or stream (HTTP/2) is dropped
// without an answer, the upstream request ends (the backend's read fails),
// the one audit record says client_closed with status 499, and no
// goroutine is left behind. Without the bound the client would hold the
// connection, a handler and an upstream request for as long as it likes.
func TestSlowBodyCutOff(t *testing.T) {
	cases := []struct {
		name string
		// stall sends the 10 bytes of a 1000-byte body to path and stalls;
		// it returns what the client received until the gateway gave up.
		stall func(t *testing.T, e *slowBodyEnv, path string) (answer string, err error)
	}{
		{"http1-raw-tcp", func(t *testing.T, e *slowBodyEnv, path string) (string, error) {
			conn, err := net.Dial("tcp", e.gw.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: gw.test\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n0123456789", path)
			got, err := io.ReadAll(conn) // returns when the gateway closes the connection
			return string(got), err
		}},
		{"http2-stream", func(t *testing.T, e *slowBodyEnv, path string) (string, error) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() { _, _ = pw.Write([]byte("0123456789")) }() // then nothing more
			req, err := http.NewRequest("POST", e.tls.URL+path, pr)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = 1000
			resp, err := e.h2Client(t).Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%s %d %s", resp.Proto, resp.StatusCode, b), nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			e := newSlowBodyEnv(t)
			path := "/public/slow-" + tc.name
			start := time.Now()
			answer, err := tc.stall(t, e, path)
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the gateway still held the stalled request after %v; body_idle_timeout is %v", took, bodyIdleTimeout)
			}
			if answer != "" {
				t.Errorf("stalled client got an answer %q, want the connection or stream dropped without one", answer)
			}
			if took < bodyIdleTimeout-50*time.Millisecond || took > 1500*time.Millisecond {
				t.Errorf("cut off after %v, want about body_idle_timeout (%v)", took, bodyIdleTimeout)
			}
			o := e.be.wait(t, path, 2*time.Second)
			if o.err == nil || o.n > 10 {
				t.Errorf("backend read %d bytes, error %v; want at most the 10 sent and a read error", o.n, o.err)
			}
			recs := e.recordsFor(path)
			if len(recs) != 1 {
				t.Fatalf("%d audit records for %s, want 1: %v", len(recs), path, recs)
			}
			if r := recs[0]; r["reason"] != "client_closed" || r["status"] != float64(499) {
				t.Errorf("audit record reason %v status %v, want client_closed 499", r["reason"], r["status"])
			}
		})
	}
}

// trickle is a request body that sends its bytes one at a time, every
// interval.
type trickle struct {
	data     []byte
	interval time.Duration
	sent     int
}

func (r *trickle) Read(p []byte) (int, error) {
	if r.sent == len(r.data) {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.sent > 0 {
		time.Sleep(r.interval)
	}
	p[0] = r.data[r.sent]
	r.sent++
	return 1, nil
}

// TestSlowButSteadyBodyAllowed pins the other side of
// server.body_idle_timeout (issue 5 item 3): it bounds silence, not the
// length of an upload. A body trickled one byte every 100ms for a second
// (over three times the 300ms bound in total) is forwarded whole and
// answered 200, over HTTP/1.1 and HTTP/2; and an upstream that takes its
// time before reading a large body does not count against a client that
// sent it promptly, since the deadline runs only while the gateway waits
// for the client.
func TestSlowButSteadyBodyAllowed(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 16<<20) // more than the socket buffers hold
	cases := []struct {
		name  string
		path  string
		h2    bool
		body  func() io.Reader
		wantN int64
	}{
		{"trickle-http1", "/public/trickle-h1", false, func() io.Reader { return &trickle{data: []byte("0123456789"), interval: 100 * time.Millisecond} }, 10},
		{"trickle-http2", "/public/trickle-h2", true, func() io.Reader { return &trickle{data: []byte("0123456789"), interval: 100 * time.Millisecond} }, 10},
		{"slow-upstream-reader-http1", "/public/lazy-h1", false, func() io.Reader { return bytes.NewReader(big) }, int64(len(big))},
		{"slow-upstream-reader-http2", "/public/lazy-h2", true, func() io.Reader { return bytes.NewReader(big) }, int64(len(big))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			e := newSlowBodyEnv(t)
			base, client := e.gw.URL, e.client
			if tc.h2 {
				base, client = e.tls.URL, e.h2Client(t)
			}
			req, err := http.NewRequest("POST", base+tc.path, tc.body())
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.wantN
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", tc.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if wantProto := map[bool]int{false: 1, true: 2}[tc.h2]; resp.ProtoMajor != wantProto {
				t.Fatalf("answered over %s, want HTTP/%d", resp.Proto, wantProto)
			}
			if want := "got " + strconv.FormatInt(tc.wantN, 10); resp.StatusCode != 200 || string(b) != want {
				t.Errorf("status %d body %q after %v, want 200 %q", resp.StatusCode, b, time.Since(start), want)
			}
			if o := e.be.wait(t, tc.path, 2*time.Second); o.err != nil || o.n != tc.wantN {
				t.Errorf("backend read %d bytes, error %v; want all %d and EOF", o.n, o.err, tc.wantN)
			}
			if recs := e.recordsFor(tc.path); len(recs) != 1 || recs[0]["status"] != float64(200) || recs[0]["bytes_in"] != float64(tc.wantN) {
				t.Errorf("audit records %v, want one with status 200 and bytes_in %d", recs, tc.wantN)
			}
		})
	}
}

// pausingBody sends half of its bytes, waits, then sends the rest.
type pausingBody struct {
	data  []byte
	pause time.Duration
	sent  int
}

func (b *pausingBody) Read(p []byte) (int, error) {
	if b.sent == len(b.data) {
		return 0, io.EOF
	}
	if b.sent == len(b.data)/2 && b.pause > 0 {
		time.Sleep(b.pause)
		b.pause = 0
	}
	end := min(len(b.data), b.sent+max(1, len(b.data)/2-b.sent))
	if b.sent >= len(b.data)/2 {
		end = len(b.data)
	}
	n := copy(p, b.data[b.sent:end])
	b.sent += n
	return n, nil
}

// TestGRPCBodyExemptFromIdleTimeout: gRPC streams may legitimately send
// nothing for a while (they have deadlines and keepalives of their own),
// so server.body_idle_timeout does not cut a gRPC request body that pauses
// for longer than it; a plain body pausing as long is cut off.
func TestGRPCBodyExemptFromIdleTimeout(t *testing.T) {
	e := newSlowBodyEnv(t)
	data := []byte(strings.Repeat("g", 64))
	cases := []struct {
		name, path, contentType string
		wantStatus              int
	}{
		{"grpc-exempt", "/public/grpc-pause", "application/grpc", http.StatusOK},
		{"plain-cut-off", "/public/plain-pause", "application/octet-stream", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", e.gw.URL+tc.path, &pausingBody{data: data, pause: 3 * bodyIdleTimeout})
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = int64(len(data))
			req.Header.Set("Content-Type", tc.contentType)
			resp, err := e.client.Do(req)
			status := 0
			if err == nil {
				status = resp.StatusCode
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if status != tc.wantStatus {
				t.Fatalf("status = %d (err %v), want %d", status, err, tc.wantStatus)
			}
			o := e.be.wait(t, tc.path, 5*time.Second)
			if tc.wantStatus == http.StatusOK && (o.err != nil || o.n != int64(len(data))) {
				t.Errorf("backend read %d bytes (err %v), want all %d", o.n, o.err, len(data))
			}
		})
	}
}
