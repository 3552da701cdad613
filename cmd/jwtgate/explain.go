package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/proxy"
)

// nopRecorder discards request records: explain serves nothing.
type nopRecorder struct{}

func (nopRecorder) Request(*audit.Record) {}

// explainCmd evaluates routing and the auth decision for one request and
// prints each step (SPEC §1). Nothing is sent upstream.
func explainCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("explain", "jwtgate explain -c gateway.yaml --method GET --url https://host/path [--token T] [--json]", stderr)
	path := fs.String("c", "gateway.yaml", "config file")
	method := fs.String("method", "GET", "request method")
	rawURL := fs.String("url", "", "request URL, absolute (https://host/path?query)")
	token := fs.String("token", "", "the token the request carries (optional)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *rawURL == "" {
		fmt.Fprintln(stderr, "explain: --url is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printLoadError(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := proxy.Build(ctx, cfg, proxy.Deps{Logger: zerolog.Nop(), Audit: nopRecorder{}}, nil)
	if err != nil {
		fmt.Fprintf(stderr, "explain: %v\n", err)
		return 1
	}
	defer g.Retire(nil)
	e := g.Explain(ctx, *method, *rawURL, *token)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e)
	} else {
		e.WriteText(stdout)
	}
	return 0
}
