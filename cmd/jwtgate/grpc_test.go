package main

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcUpstream is a real gRPC server with the health service on a plain
// (h2c) listener. Every unary call gets the trailer x-upstream-trailer and
// records the authorization metadata it saw.
type grpcUpstream struct {
	addr  string
	calls chan metadata.MD
}

func newGRPCUpstream(t *testing.T) *grpcUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &grpcUpstream{addr: ln.Addr().String(), calls: make(chan metadata.MD, 16)}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		select {
		case u.calls <- md:
		default:
		}
		if err := grpc.SetTrailer(ctx, metadata.Pairs("x-upstream-trailer", "kept")); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}))
	hs := health.NewServer()
	hs.SetServingStatus("", grpc_health_v1.HealthCheckResponse_SERVING)
	grpc_health_v1.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return u
}

const grpcConfigYAML = `
server: {address: "127.0.0.1:0", h2c: true, shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: "{{JWKS}}", algorithms: [ES256]}
routes:
  - name: health
    match: {path_prefix: /grpc.health.v1.Health}
    upstream: {url: "http://{{GRPC}}"}
    auth: {providers: [main], require: {scopes: ["health:read"]}}
audit: {output: file, file: "{{AUDIT}}"}
`

// TestGRPCPassThroughAndAuthCodes pins issue 3 item 4 and SPEC §4: a real
// gRPC client reaches a real gRPC server through the gateway (cleartext
// HTTP/2 on the public port with server.h2c, h2c to the http upstream,
// and over TLS on the public port), the upstream's trailers arrive intact,
// and auth failures come back as gRPC statuses UNAUTHENTICATED (16) and
// PERMISSION_DENIED (7), audited with status 401/403 and grpc_status.
func TestGRPCPassThroughAndAuthCodes(t *testing.T) {
	for _, public := range []string{"h2c", "tls"} {
		t.Run(public, func(t *testing.T) {
			dir := t.TempDir()
			is, up := newIssuer(t, "k1"), newGRPCUpstream(t)
			cfg := grpcConfigYAML
			creds := insecure.NewCredentials()
			if public == "tls" {
				cert := newTestCert(t, "grpc-gw")
				cert.install(t, dir)
				cfg = strings.Replace(cfg, "h2c: true", "tls: {cert_file: tls.crt, key_file: tls.key}", 1)
				creds = credentials.NewTLS(&tls.Config{RootCAs: certPool(cert)})
			}
			path := writeGatewayConfig(t, dir, "gateway.yaml", cfg, map[string]string{"JWKS": is.srv.URL, "GRPC": up.addr})
			g := startGateway(t, path, false, false)

			cc, err := grpc.NewClient("passthrough:///"+g.addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			client := grpc_health_v1.NewHealthClient(cc)

			cases := []struct {
				name  string
				token string
				want  codes.Code
			}{
				{"valid-token-with-scope", is.mint(t, jwt.MapClaims{"scope": "health:read"}), codes.OK},
				{"no-token", "", codes.Unauthenticated},
				{"token-without-scope", is.mint(t, jwt.MapClaims{"scope": "other"}), codes.PermissionDenied},
				{"tampered-signature", tamper(is.mint(t, jwt.MapClaims{"scope": "health:read"})), codes.Unauthenticated},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if tc.token != "" {
						ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.token)
					}
					var trailer metadata.MD
					resp, err := client.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Trailer(&trailer))
					if got := status.Code(err); got != tc.want {
						t.Fatalf("Check: code %v (%v), want %v", got, err, tc.want)
					}
					if tc.want != codes.OK {
						if msg := status.Convert(err).Message(); msg == "" || (tc.token != "" && strings.Contains(msg, tc.token)) {
							t.Errorf("grpc-message %q: want a short description that does not echo the token", msg)
						}
						return
					}
					if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
						t.Errorf("health status %v, want SERVING", resp.GetStatus())
					}
					if v := trailer.Get("x-upstream-trailer"); len(v) != 1 || v[0] != "kept" {
						t.Errorf("upstream trailer x-upstream-trailer = %q, want [kept]; trailers %v", v, trailer)
					}
					select {
					case md := <-up.calls:
						if len(md.Get("authorization")) != 1 {
							t.Errorf("upstream metadata %v: the token should be forwarded (strip_token is off)", md)
						}
					default:
						t.Error("the upstream saw no call")
					}
				})
			}
			if len(up.calls) != 0 {
				t.Errorf("%d denied calls reached the upstream", len(up.calls))
			}

			cc.Close()
			type key struct{ status, grpc int }
			got := map[key]int{}
			// The audit writer is asynchronous: poll until the records of
			// the calls are on disk.
			eventually(2*time.Second, func() bool {
				got = map[key]int{}
				for _, r := range readRecords(t, filepath.Join(dir, "audit.log")) {
					if r["event"] != "request" || r["path"] != "/grpc.health.v1.Health/Check" {
						continue
					}
					st, _ := r["status"].(float64)
					gs, ok := r["grpc_status"].(float64)
					if !ok {
						gs = -1
					}
					got[key{int(st), int(gs)}]++
				}
				return len(got) >= 3
			})
			for _, want := range []key{{401, 16}, {403, 7}} {
				if got[want] == 0 {
					t.Errorf("no request record with status %d and grpc_status %d; records (status, grpc_status) = %v", want.status, want.grpc, got)
				}
			}
			if got[key{200, -1}] == 0 && got[key{200, 0}] == 0 {
				t.Errorf("no record of the allowed call with status 200; records = %v", got)
			}
		})
	}
}

// tamper changes one character in the middle of a token's signature.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 10
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
