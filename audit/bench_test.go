package audit

import (
	"io"
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// BenchmarkRequestRecord measures encoding and queueing one full request
// record with a chain (the caller's cost; the writer goroutine chains and
// writes to io.Discard).
func BenchmarkRequestRecord(b *testing.B) {
	for _, chained := range []bool{false, true} {
		name := "plain"
		var key []byte
		if chained {
			name, key = "chained", newKey(b)
		}
		b.Run(name, func(b *testing.B) {
			w, err := New(config.Audit{Output: OutputStdout, Claims: []string{"azp", "tenant"}},
				Options{Stdout: io.Discard, ChainKey: key})
			if err != nil {
				b.Fatal(err)
			}
			r := fullRecord(1)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.Request(r)
			}
			b.StopTimer()
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
