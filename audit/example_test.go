package audit_test

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
)

// Example shows the exact line format of chained request and lifecycle
// records.
func Example() {
	now := time.Date(2025, 1, 2, 15, 4, 5, 678_000_000, time.UTC)
	w, err := audit.New(config.Audit{Output: audit.OutputStdout, Claims: []string{"azp", "sub"}}, audit.Options{
		Stdout:        os.Stdout,
		ChainKey:      bytes.Repeat([]byte("k"), 32), // never use such a key outside an example
		ConfigVersion: "3f2a9c0d1e4b5a69",
		Now:           func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	w.Startup(audit.StartupInfo{Version: "1.0.0", GoVersion: "go1.26.8", PID: 4242})
	w.Request(&audit.Record{
		Time: now, RequestID: "r-1", Route: "orders", Method: "GET", Host: "api.example.com",
		Path: "/orders/1", ClientIP: "203.0.113.9", Status: 200, Decision: audit.DecisionAllow,
		Provider: "corp", Iss: "https://idp.example.com/", Sub: "alice", Kid: "k1", Alg: "ES256",
		TokenID: audit.TokenID("example-token"), ConfigVersion: "3f2a9c0d1e4b5a69",
		Claims:   []audit.Claim{{Name: "azp", Value: "cli"}, {Name: "sub", Value: "alice"}},
		Upstream: "http://127.0.0.1:9001", Duration: 1234 * time.Microsecond, BytesOut: 17,
	})
	w.Request(&audit.Record{
		Time: now, RequestID: "r-2", Route: "orders", Method: "GET", Path: "/orders/2",
		Status: 401, Decision: audit.DecisionDeny, Reason: audit.ReasonSignatureInvalid,
		Suspicious: audit.ReasonSignatureInvalid.Suspicious(), Kid: "k1", Alg: "ES256",
		Duration: 87 * time.Microsecond,
	})
	if err := w.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"time":"2025-01-02T15:04:05.678Z","level":"info","event":"startup","config_version":"3f2a9c0d1e4b5a69","version":"1.0.0","go_version":"go1.26.8","pid":4242,"seq":1,"chain":"f8eb4cce9bb85f21cb64e99c610bfee486a73069b8772f9bd825b11675a5a9d9"}
	// {"time":"2025-01-02T15:04:05.678Z","level":"info","event":"request","request_id":"r-1","route":"orders","method":"GET","host":"api.example.com","path":"/orders/1","client_ip":"203.0.113.9","status":200,"decision":"allow","provider":"corp","iss":"https://idp.example.com/","sub":"alice","kid":"k1","alg":"ES256","token_id":"4d1566a1d7df42a8","config_version":"3f2a9c0d1e4b5a69","azp":"cli","claim_sub":"alice","upstream":"http://127.0.0.1:9001","duration_ms":1.234,"bytes_in":0,"bytes_out":17,"seq":2,"chain":"17712837056d8f584d76c832e489358248d137456406245aa47146d090b03f50"}
	// {"time":"2025-01-02T15:04:05.678Z","level":"info","event":"request","request_id":"r-2","route":"orders","method":"GET","path":"/orders/2","status":401,"decision":"deny","reason":"signature_invalid","suspicious":true,"kid":"k1","alg":"ES256","config_version":"3f2a9c0d1e4b5a69","duration_ms":0.087,"bytes_in":0,"bytes_out":0,"seq":3,"chain":"1fe1e901ee1d62e6de3d21efe7be6334d7f898683825b541182948bba28090f0"}
}
