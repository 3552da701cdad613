package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const rapidResetConfigYAML = `
server: {address: "127.0.0.1:0", h2c: true, shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: "{{JWKS}}", algorithms: [ES256]}
routes:
  - {name: api, match: {path_prefix: /api}, upstream: {url: "{{BACKEND}}"}, auth: {providers: [main]}}
audit: {output: file, file: "{{AUDIT}}"}
`

// rapidResetStreams is how many HEADERS + RST_STREAM pairs the flood sends.
const rapidResetStreams = 5000

// rapidResetMaxConcurrent is what Go's HTTP/2 server (which jwtgate uses
// for h2c and TLS) allows one connection: at most MaxConcurrentStreams
// (250 by default) handlers at a time, and a reset stream's handler counts
// until it has returned, not until the stream is reset (the fix for
// CVE-2023-44487). A stream reset before its handler started is dropped
// from the queue, and more than 4×250 queued handlers end the connection
// with GOAWAY ENHANCE_YOUR_CALM ("too_many_early_resets").
//
// The mitigation bounds concurrency, not the total: a handler that
// starts before the server has processed its stream's RST_STREAM may
// reach the upstream before its context is cancelled. How many do depends
// on parallelism (measured here: none with GOMAXPROCS=1, 17–34% of 5,000
// with 2 CPUs, 13% under -race). Each such upstream request is cancelled
// when its stream is, so the backend never has more of them in flight
// than the gateway has handlers.
const rapidResetMaxConcurrent = 250

// floodBackend is the rapid-reset test's upstream. It counts requests,
// the most it had in flight at once, and connections (accepted and still
// open); it holds each /api/flood request for up to 50ms, or until the
// gateway cancels it, so that requests the gateway forwards at the same
// time overlap here.
type floodBackend struct {
	srv                      *httptest.Server
	requests, inflight, peak atomic.Int64
	conns, open              atomic.Int64
}

func newFloodBackend(t *testing.T) *floodBackend {
	t.Helper()
	b := &floodBackend{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		n := b.inflight.Add(1)
		defer b.inflight.Add(-1)
		for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
		}
		if r.URL.Path == "/api/flood" {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	b.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			b.conns.Add(1)
			b.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.open.Add(-1)
		}
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

// h2cClient is a client that speaks HTTP/2 with prior knowledge over
// cleartext, on connections of its own.
func h2cClient() (*http.Client, *http.Transport) {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, tr
}

// floodResult is what the rapid-reset client saw.
type floodResult struct {
	sent      int               // HEADERS + RST_STREAM pairs written
	writeErr  error             // why writing stopped early, if it did
	goAway    http2.ErrCode     // the GOAWAY code, if the server sent one
	sawGoAway bool              // the server sent GOAWAY
	closed    bool              // the server closed the connection
	frames    map[string]int    // frames received, by type
	rsts      map[uint32]uint32 // RST_STREAMs received: stream → code
}

// rapidReset opens one h2c connection to addr and sends n HEADERS frames
// for GET path, each followed at once by RST_STREAM(CANCEL), on streams 1,
// 3, 5, … (CVE-2023-44487), reading whatever the server answers
// meanwhile, then a PING. It returns once the server has acknowledged the
// PING (so has processed the whole flood) or closed the connection.
func rapidReset(t *testing.T, addr, path, token string, n int) floodResult {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(8 * time.Second))
	bw := bufio.NewWriterSize(conn, 64<<10)
	fr := http2.NewFramer(bw, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)

	res := floodResult{frames: map[string]int{}, rsts: map[uint32]uint32{}}
	var hungUp atomic.Bool // the client closed the connection itself
	readDone, pinged := make(chan struct{}), make(chan struct{})
	floodEnd := [8]byte{'f', 'l', 'o', 'o', 'd', 'e', 'n', 'd'}
	go func() { // the server's frames must be read, or its writes (and so its reads) stall
		defer close(readDone)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				var ne net.Error
				res.closed = !hungUp.Load() && (!errors.As(err, &ne) || !ne.Timeout())
				return
			}
			res.frames[f.Header().Type.String()]++
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				res.sawGoAway, res.goAway = true, f.ErrCode
			case *http2.RSTStreamFrame:
				res.rsts[f.StreamID] = uint32(f.ErrCode)
			case *http2.PingFrame:
				if f.IsAck() && f.Data == floodEnd {
					close(pinged)
				}
			}
		}
	}()

	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	write := func() error {
		if _, err := io.WriteString(bw, http2.ClientPreface); err != nil {
			return err
		}
		if err := fr.WriteSettings(); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			id := uint32(2*i + 1)
			hbuf.Reset()
			for _, hf := range []hpack.HeaderField{
				{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: addr}, {Name: ":path", Value: path},
				{Name: "authorization", Value: "Bearer " + token, Sensitive: true},
			} {
				if err := enc.WriteField(hf); err != nil {
					return err
				}
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
				return err
			}
			if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
				return err
			}
			res.sent++
			if bw.Buffered() > 32<<10 {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}
		// The server handles a connection's frames in order: the PING's
		// ACK means every HEADERS and RST_STREAM before it was processed.
		if err := fr.WritePing(false, floodEnd); err != nil {
			return err
		}
		return bw.Flush()
	}
	res.writeErr = write()

	// Wait until the server has processed the flood, or hung up.
	select {
	case <-readDone:
	case <-pinged:
		select { // a GOAWAY and close would follow at once
		case <-readDone:
		case <-time.After(100 * time.Millisecond):
		}
	case <-time.After(5 * time.Second):
		t.Error("the server neither acknowledged the PING after the flood nor closed the connection within 5s")
	}
	hungUp.Store(true)
	conn.Close()
	<-readDone
	return res
}

// TestHTTP2RapidResetIsContained pins issue 5 item 3 (HTTP/2 rapid reset,
// CVE-2023-44487): a client that opens 5,000 streams on one h2c
// connection, each with a valid token and cancelled at once by
// RST_STREAM, cannot get past the concurrency limit or exhaust the
// gateway. jwtgate inherits the mitigation of Go's HTTP/2 server (see
// rapidResetMaxConcurrent): the server either works through the flood or
// ends the connection with GOAWAY ENHANCE_YOUR_CALM; the backend never
// has more than 250 of the flood's requests in flight, nor receives all
// of them; every forwarded one is cancelled with its stream. Afterwards
// the gateway serves a new connection at once, goroutines return to
// their baseline, no request has more than one audit record, and every
// flood request that reached the backend has one.
func TestHTTP2RapidResetIsContained(t *testing.T) {
	dir := t.TempDir()
	is, be := newIssuer(t, "k1"), newFloodBackend(t)
	path := writeGatewayConfig(t, dir, "gateway.yaml", rapidResetConfigYAML, map[string]string{"JWKS": is.srv.URL, "BACKEND": be.srv.URL})
	g := startGateway(t, path, false, false)
	tok := is.mint(t, nil)

	get := func(p, tok string) (int, string) {
		t.Helper()
		c, tr := h2cClient() // a new connection each time
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest("GET", g.base+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Proto
	}
	if st, proto := get("/api/warm-up", tok); st != 200 || proto != "HTTP/2.0" {
		t.Fatalf("warm-up: %d over %s, want 200 over HTTP/2.0", st, proto)
	}
	before := be.requests.Load()
	baseline := runtime.NumGoroutine()

	start := time.Now()
	res := rapidReset(t, g.addr, "/api/flood", tok, rapidResetStreams)
	t.Logf("flood: %d/%d pairs sent in %v (write error: %v); server closed the connection: %v, GOAWAY: %v %v; frames received: %v; streams answered with RST_STREAM: %d",
		res.sent, rapidResetStreams, time.Since(start), res.writeErr, res.closed, res.sawGoAway, res.goAway, res.frames, len(res.rsts))
	if res.sent < rapidResetStreams && !res.closed {
		t.Errorf("the flood stopped after %d pairs (%v) but the server did not close the connection", res.sent, res.writeErr)
	}
	if res.sawGoAway && res.goAway != http2.ErrCodeEnhanceYourCalm && res.goAway != http2.ErrCodeNo {
		t.Errorf("GOAWAY code %v, want ENHANCE_YOUR_CALM (or NO_ERROR)", res.goAway)
	}

	// The gateway still serves: a new connection gets 200 at once.
	t0 := time.Now()
	if st, _ := get("/api/after-flood", tok); st != 200 {
		t.Fatalf("after the flood a new connection got %d, want 200", st)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("after the flood a new connection waited %v for its answer", d)
	}

	// Every forwarded flood request has ended. The gateway's upstream
	// transport keeps the connections it dialed meanwhile as idle
	// keep-alive connections, at most MaxIdleConnsPerHost (256) of them,
	// until its IdleConnTimeout; once the backend drops them, goroutines
	// (handlers, streams, upstream requests) are back to the baseline.
	if !eventually(3*time.Second, func() bool { return be.inflight.Load() == 0 }) {
		t.Errorf("%d flood requests still in flight at the backend 3s after the flood", be.inflight.Load())
	}
	t.Logf("backend connections: %d dialed, %d open after the flood", be.conns.Load(), be.open.Load())
	if n := be.open.Load(); n > 256+1 {
		t.Errorf("%d upstream connections open after the flood, want at most the idle pool's 256", n)
	}
	be.srv.CloseClientConnections()
	var n int
	if !eventually(5*time.Second, func() bool { n = runtime.NumGoroutine(); return n <= baseline+5 }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before the flood, %d five seconds after:\n%s", baseline, n, buf[:runtime.Stack(buf, true)])
	}

	flood := be.requests.Load() - before - 1 // minus /api/after-flood
	t.Logf("flood requests that reached the backend: %d of %d, at most %d at once (bound %d)", flood, res.sent, be.peak.Load(), rapidResetMaxConcurrent)
	if p := be.peak.Load(); p > rapidResetMaxConcurrent {
		t.Errorf("the backend had %d flood requests in flight at once, want at most %d (MaxConcurrentStreams)", p, rapidResetMaxConcurrent)
	}
	if flood >= int64(res.sent) {
		t.Errorf("all %d reset streams reached the backend", flood)
	}

	// One audit record per request that reached the gateway, and every
	// flood request that reached the backend is among them. The writer is
	// asynchronous and ordered, and every handler has returned: once the
	// record of a last request (refused, 401) is on disk, so is every
	// flood record.
	if st, _ := get("/api/audit-marker", ""); st != http.StatusUnauthorized {
		t.Fatalf("marker request without a token got %d, want 401", st)
	}
	var recs []map[string]any
	if !eventually(3*time.Second, func() bool {
		recs = readRecords(t, filepath.Join(dir, "audit.log"))
		for _, r := range recs {
			if r["path"] == "/api/audit-marker" {
				return true
			}
		}
		return false
	}) {
		t.Fatal("no audit record of /api/audit-marker")
	}
	ids, flooded, statuses := map[string]int{}, 0, map[float64]int{}
	for _, r := range recs {
		if r["event"] != "request" {
			continue
		}
		id, _ := r["request_id"].(string)
		if ids[id]++; ids[id] > 1 {
			t.Errorf("request_id %q has %d audit records, want one", id, ids[id])
		}
		if r["path"] == "/api/flood" {
			flooded++
			st, _ := r["status"].(float64)
			statuses[st]++
		}
	}
	t.Logf("flood requests audited: %d (by status: %v)", flooded, statuses)
	if flooded > res.sent {
		t.Errorf("%d audit records for %d flood streams", flooded, res.sent)
	}
	if int64(flooded) < flood {
		t.Errorf("%d flood requests reached the backend but only %d were audited", flood, flooded)
	}
}
