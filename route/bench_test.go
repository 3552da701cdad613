package route

import (
	"fmt"
	"testing"

	"github.com/jwtgate/jwtgate/config"
)

// benchRoutes builds n routes across hosts, wildcards and prefixes of
// various depths, the shape of a large gateway config.
func benchRoutes(n int) []config.Route {
	routes := make([]config.Route, 0, n)
	for i := range n {
		m := map[string]string{"prefix": fmt.Sprintf("/svc%d/v%d", i, i%3)}
		switch i % 4 {
		case 1:
			m["host"] = fmt.Sprintf("h%d.example.com", i%50)
		case 2:
			m["host"] = fmt.Sprintf("*.t%d.example.com", i%50)
		case 3:
			m["methods"] = "GET,POST"
		}
		routes = append(routes, rt(fmt.Sprintf("r%d", i), m))
	}
	return append(routes, rt("catch-all", pfx("/")))
}

// BenchmarkMatch measures route selection at 10, 1,000 and 10,000 routes:
// the cost follows the path depth and host labels, not the route count.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			tb := mustNew(b, benchRoutes(n))
			// The target is a host-less route in the middle of the file, so
			// every size takes the same path: exact host miss, wildcard
			// probes, then the host-less tier.
			i := n/2 - n/2%4 + 3
			p := mustClean(b, fmt.Sprintf("/svc%d/v%d/orders/123/items", i, i%3), strict)
			host := "a.t2.example.com:443"
			b.ReportAllocs()
			for b.Loop() {
				if res := tb.Match(host, "GET", p); res.Index != i {
					b.Fatalf("Match() = %+v", res)
				}
			}
		})
	}
}

// BenchmarkCleanPath measures path canonicalisation: the canonical fast
// path (zero allocations) and inputs that need decoding and resolving.
func BenchmarkCleanPath(b *testing.B) {
	for _, tc := range []struct{ name, in string }{
		{"canonical", "/orders/123/items/456"},
		{"escaped", "/orders/caf%C3%A9/a%20b"},
		{"dot-segments", "/orders/./x/../123//items/%2e%2e/456"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CleanPath(tc.in, strict); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
