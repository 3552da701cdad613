package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServerSentEventsStreamedUnbuffered: a text/event-stream answer is
// flushed event by event — the client reads the first event while the
// backend is still holding the second (the backend waits up to 300 ms
// before writing it), so the gateway never buffers a stream.
func TestServerSentEventsStreamedUnbuffered(t *testing.T) {
	e := newEnv(t)
	req := httptestRequest(t, "GET", e.gw.URL+"/stream/sse")
	req.Header.Set("Authorization", "Bearer "+e.rs256(nil))
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read first event: %v", err)
	}
	if e.stream.secondWritten.Load() {
		t.Fatal("the first event arrived only after the backend wrote the second: the stream was buffered")
	}
	if first != "data: one\n" {
		t.Errorf("first line = %q", first)
	}
	e.stream.releaseOnce.Do(func() { close(e.stream.release) })
	rest := readAll(t, br)
	if !strings.Contains(rest, "data: two\n") {
		t.Errorf("second event missing: %q", rest)
	}
	rec := e.lastRecord()
	if rec["status"] != float64(200) || rec["decision"] != "allow" || rec["route"] != "stream" {
		t.Errorf("record %v", rec)
	}
}

func readAll(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	if _, err := br.WriteTo(&b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return b.String()
}

// dialUpgrade sends a WebSocket-style upgrade request for path over a raw
// connection and returns the connection, its reader and the response.
func (e *env) dialUpgrade(t *testing.T, path, token string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", e.gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gw.test\r\n%sConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, auth)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	return conn, br, resp
}

// TestWebSocketUpgradeWithoutTokenRefused: an upgrade request is checked
// like any other — without a token it gets 401 and the backend never
// sees it, so no tunnel is ever opened unauthenticated.
func TestWebSocketUpgradeWithoutTokenRefused(t *testing.T) {
	e := newEnv(t)
	for name, tok := range map[string]string{"no-token": "", "bad-token": "a.b.c", "wrong-key": sign(t, jwtRS256, rsaKey2, "rsa1", claims(nil))} {
		t.Run(name, func(t *testing.T) {
			before := e.stream.hits.Load()
			_, _, resp := e.dialUpgrade(t, "/stream/ws", tok)
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("status %d, want 401", resp.StatusCode)
			}
			if e.stream.hits.Load() != before {
				t.Error("unauthenticated upgrade reached the backend")
			}
			if rec := e.lastRecord(); rec["decision"] != "deny" || rec["status"] != float64(401) {
				t.Errorf("record decision=%v status=%v", rec["decision"], rec["status"])
			}
		})
	}
}

// TestWebSocketUpgradeTunnelsBothWays: with a valid token the backend's
// 101 Switching Protocols reaches the client and bytes then flow both
// ways over the hijacked connection; the record says 101 and allow.
func TestWebSocketUpgradeTunnelsBothWays(t *testing.T) {
	e := newEnv(t)
	conn, br, resp := e.dialUpgrade(t, "/stream/ws", e.rs256(nil))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Errorf("Upgrade = %q", resp.Header.Get("Upgrade"))
	}
	if line, err := br.ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("backend → client: %q, %v", line, err)
	}
	for _, msg := range []string{"ping\n", "second message\n"} {
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if line, err := br.ReadString('\n'); err != nil || line != "echo:"+msg {
			t.Fatalf("client → backend → client: %q, %v", line, err)
		}
	}
	conn.Close()
	// The record is written when the tunnel closes.
	deadline := time.Now().Add(3 * time.Second)
	var rec map[string]any
	for time.Now().Before(deadline) {
		if recs := e.requestRecords(); len(recs) > 0 {
			rec = recs[len(recs)-1]
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rec == nil {
		t.Fatal("no record after the tunnel closed")
	}
	if rec["decision"] != "allow" || rec["status"] != float64(http.StatusSwitchingProtocols) || rec["sub"] != "alice" {
		t.Errorf("record decision=%v status=%v sub=%v, want allow 101 alice", rec["decision"], rec["status"], rec["sub"])
	}
}

// waitRecords polls the audit trail until it holds n request records.
func (e *env) waitRecords(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		recs := e.requestRecords()
		if len(recs) >= n || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestResponseBrokenMidBodyStillAudited pins SPEC §5 "one record per
// request, written whatever the outcome" for answers that break after the
// status line was sent: ReverseProxy then aborts the handler with
// http.ErrAbortHandler, and the record must still be written — with
// upstream_unreachable when the upstream hung up mid-body, client_closed
// when the client went away mid-stream.
func TestResponseBrokenMidBodyStillAudited(t *testing.T) {
	t.Run("upstream-truncated", func(t *testing.T) {
		e := newEnv(t)
		req := httptestRequest(t, "GET", e.gw.URL+"/stream/truncated")
		req.Header.Set("Authorization", "Bearer "+e.rs256(nil))
		// The abort drops the connection: the client sees an error, either
		// before the status line (headers not flushed yet) or mid-body.
		if resp, err := e.client.Do(req); err == nil {
			if _, err := io.ReadAll(resp.Body); err == nil {
				t.Error("truncated body read without error")
			}
			resp.Body.Close()
		}
		recs := e.waitRecords(t, 1)
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1", len(recs))
		}
		if r := recs[0]; r["decision"] != "allow" || r["reason"] != "upstream_unreachable" || r["status"] != float64(502) || r["sub"] != "alice" {
			t.Errorf("record decision=%v reason=%v status=%v sub=%v, want allow upstream_unreachable 502 alice", r["decision"], r["reason"], r["status"], r["sub"])
		}
	})
	t.Run("client-gone-mid-stream", func(t *testing.T) {
		e := newEnv(t)
		req := httptestRequest(t, "GET", e.gw.URL+"/stream/endless")
		req.Header.Set("Authorization", "Bearer "+e.rs256(nil))
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "chunk\n" {
			t.Fatalf("first chunk %q, %v", line, err)
		}
		resp.Body.Close() // the client goes away mid-stream
		recs := e.waitRecords(t, 1)
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1", len(recs))
		}
		if r := recs[0]; r["decision"] != "allow" || r["reason"] != "client_closed" || r["status"] != float64(499) {
			t.Errorf("record decision=%v reason=%v status=%v, want allow client_closed 499", r["decision"], r["reason"], r["status"])
		}
	})
}
