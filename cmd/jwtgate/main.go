// Command jwtgate is a reverse proxy that lets a request reach a backend
// only with a valid JWT meeting the route's requirements, and writes an
// audit record for every decision. See SPEC.md and README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/jwtgate/jwtgate/auditlog"
	"github.com/jwtgate/jwtgate/tokentool"
)

// version and commit are set at build time with -ldflags "-X main.version=…".
var (
	version = "dev"
	commit  = ""
)

const usage = `jwtgate: a JWT-checking reverse proxy with an audit trail

Usage:
  jwtgate serve -c gateway.yaml [--watch]     run the gateway (default command)
  jwtgate validate -c gateway.yaml            check a config; print every problem
  jwtgate demo                                self-contained demo on loopback
  jwtgate token keygen|mint|inspect ...       make keys and test tokens, decode tokens
  jwtgate explain -c FILE --method M --url U [--token T]
                                              explain routing and the auth decision
  jwtgate audit tail|verify|report ...        read, verify and summarise audit logs
  jwtgate schema                              print the config's JSON Schema (for editors)
  jwtgate version                             print version, commit and Go version

Run "jwtgate COMMAND -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the exit code: 0 success,
// 1 a failure the command reports, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return serveCmd(nil, stdout, stderr)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCmd(rest, stdout, stderr)
	case "validate":
		return validateCmd(rest, stdout, stderr)
	case "demo":
		return demoCmd(rest, stdout, stderr)
	case "explain":
		return explainCmd(rest, stdout, stderr)
	case "version":
		return versionCmd(rest, stdout, stderr)
	case "token":
		return tokenCmd(rest, stdout, stderr)
	case "audit":
		return auditCmd(rest, stdout, stderr)
	case "schema":
		return schemaCmd(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(cmd) > 0 && cmd[0] == '-' { // flags only: serve
		return serveCmd(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "jwtgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func tokenCmd(args []string, stdout, stderr io.Writer) int {
	const u = "Usage: jwtgate token keygen|mint|inspect [flags]\n  keygen   generate a signing key pair and its public JWKS\n  mint     sign a test token\n  inspect  decode a token without trusting it\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, u)
		return 2
	}
	switch args[0] {
	case "keygen":
		return tokentool.Keygen(args[1:], stdout, stderr)
	case "mint":
		return tokentool.Mint(args[1:], stdout, stderr)
	case "inspect":
		return tokentool.Inspect(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, u)
		return 0
	}
	fmt.Fprintf(stderr, "jwtgate token: unknown command %q\n%s", args[0], u)
	return 2
}

func auditCmd(args []string, stdout, stderr io.Writer) int {
	const u = "Usage: jwtgate audit tail|verify|report [flags] FILE...\n  tail    show (and follow) an audit log, filtered\n  verify  check the tamper-evident chain\n  report  summarise a period for an access review\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, u)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "tail":
		return auditlog.TailCommand(ctx, args[1:], stdout, stderr)
	case "verify":
		return auditlog.VerifyCommand(ctx, args[1:], stdout, stderr)
	case "report":
		return auditlog.ReportCommand(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, u)
		return 0
	}
	fmt.Fprintf(stderr, "jwtgate audit: unknown command %q\n%s", args[0], u)
	return 2
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "jwtgate version", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintf(stdout, "jwtgate %s (commit %s, %s %s/%s)\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// buildCommit is the -ldflags commit, else the VCS revision Go recorded.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}
