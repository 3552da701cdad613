package auditlog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

const reportUsage = `Usage: jwtgate audit report [--since 24h] [--until T] [--format text|html]
                           [--key-file K] [-o FILE] FILE...

Summarises audit log files (oldest first) for an access review: decisions,
reasons, routes, subjects, denials over time, config versions, keys,
lifecycle events, chain status and suspicious activity. --since and --until
take a duration before now (24h, 90m, 7d) or an RFC 3339 time; the default is
every record. --format html writes one self-contained page (no scripts, no
external assets).`

// ReportCommand runs `jwtgate audit report`. It returns the exit code: 0 when
// the report was written, 1 when a file cannot be read or the output cannot
// be written, 2 for bad usage. A broken chain is shown in the report and
// also makes the exit code 1, so scripts notice it.
func ReportCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit report", reportUsage, stderr)
	var since, until whenFlag
	fs.Var(&since, "since", "only records at or after this `time`: a duration ago (24h, 7d) or RFC 3339 (default: all)")
	fs.Var(&until, "until", "only records before this `time`: a duration ago or RFC 3339 (default: now)")
	format := fs.String("format", "text", "output `format`: text or html")
	keyFile := fs.String("key-file", "", "chain key `file`: verify the tamper-evident chain too")
	outFile := fs.String("o", "", "write the report to `file` instead of stdout")
	files, err := parseArgs(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "jwtgate audit report: need at least one FILE")
		fs.Usage()
		return exitUsage
	}
	if *format != "text" && *format != "html" {
		fmt.Fprintf(stderr, "jwtgate audit report: --format %q: want text or html\n", *format)
		return exitUsage
	}
	now := time.Now()
	s, err := summarize(ctx, files, since.at(now), until.at(now))
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate audit report: %v\n", err)
		return exitFailure
	}
	if *keyFile != "" {
		s.Chain = checkChain(ctx, *keyFile, files)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "jwtgate audit report: interrupted")
		return exitFailure
	}
	var buf bytes.Buffer
	if *format == "html" {
		err = writeHTML(&buf, s, now)
	} else {
		err = writeText(&buf, s)
	}
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate audit report: %v\n", err)
		return exitFailure
	}
	if *outFile != "" {
		// Reports name subjects and client addresses: keep them private
		// to the owner by default.
		err = os.WriteFile(*outFile, buf.Bytes(), 0o600)
	} else {
		_, err = stdout.Write(buf.Bytes())
	}
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate audit report: write: %v\n", err)
		return exitFailure
	}
	if s.Chain.State == ChainBroken || s.Chain.State == ChainError {
		fmt.Fprintf(stderr, "jwtgate audit report: chain %s\n", chainText(s.Chain))
		return exitFailure
	}
	return exitOK
}

// checkChain verifies the files' chain with the key in keyFile.
func checkChain(ctx context.Context, keyFile string, files []string) ChainStatus {
	key, err := readKeyFile(keyFile)
	if err != nil {
		return ChainStatus{State: ChainError, Detail: err.Error()}
	}
	res, err := verify(ctx, key, files, "")
	if err != nil {
		return ChainStatus{State: ChainError, Detail: err.Error(), Records: res.Records}
	}
	if res.Broken != nil {
		return ChainStatus{State: ChainBroken, Break: res.Broken, Records: res.Records}
	}
	return ChainStatus{State: ChainVerified, Records: res.Records, Skipped: len(res.Skipped)}
}
