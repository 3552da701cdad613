package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .want files of the golden config tests")

// goldenDir holds the shared config fixtures (R16).
const goldenDir = "../testdata/config"

// setTestSecrets sets the environment variables the golden configs name.
// JWTGATE_TEST_UNSET is guaranteed absent.
func setTestSecrets(t *testing.T) {
	t.Helper()
	b32 := []byte("0123456789abcdef0123456789abcdef")
	url32 := []byte{0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff}
	t.Setenv("JWTGATE_TEST_SECRET_32", string(b32))
	t.Setenv("JWTGATE_TEST_SECRET_31", string(b32[:31]))
	t.Setenv("JWTGATE_TEST_SECRET_40", strings.Repeat("k", 40))
	t.Setenv("JWTGATE_TEST_SECRET_64", strings.Repeat("k", 64))
	t.Setenv("JWTGATE_TEST_B64_32", "base64:"+base64.StdEncoding.EncodeToString(b32))
	t.Setenv("JWTGATE_TEST_B64_31", "base64:"+base64.StdEncoding.EncodeToString(b32[:31]))
	t.Setenv("JWTGATE_TEST_B64URL_32", "base64:"+base64.RawURLEncoding.EncodeToString(url32))
	t.Setenv("JWTGATE_TEST_BAD_B64", "base64:not*base64!")
	t.Setenv("JWTGATE_TEST_EMPTY", "")
	t.Setenv("JWTGATE_TEST_UNSET", "")
	os.Unsetenv("JWTGATE_TEST_UNSET")
}

// renderProblems prints problems the way `jwtgate validate` does: each
// error as "path: message", then each warning as "warning: path: message".
func renderProblems(errs, warns []FieldError) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error() + "\n")
	}
	for _, w := range warns {
		b.WriteString("warning: " + w.Error() + "\n")
	}
	return b.String()
}

// TestGoldenConfigs pins SPEC §2's validation output: every file under
// testdata/config/valid loads (its .want lists the warnings) and every file
// under testdata/config/invalid fails with exactly the problems its .want
// lists, in document order. Run with -update to rewrite the .want files.
func TestGoldenConfigs(t *testing.T) {
	setTestSecrets(t)
	for _, kind := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join(goldenDir, kind, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no golden files in %s/%s: %v", goldenDir, kind, err)
		}
		for _, file := range files {
			name := kind + "-" + strings.TrimSuffix(filepath.Base(file), ".yaml")
			t.Run(name, func(t *testing.T) {
				cfg, err := Load(file)
				var got string
				if kind == "valid" {
					if err != nil {
						t.Fatalf("Load(%q) error = %v, want none", file, err)
					}
					if errs := errorsOnly(cfg.Validate()); len(errs) > 0 {
						t.Errorf("Validate() after Load = %v, want no errors", errs)
					}
					got = renderProblems(nil, cfg.Warnings)
				} else {
					var ce *Error
					if !errors.As(err, &ce) {
						t.Fatalf("Load(%q) error = %v, want *Error", file, err)
					}
					if ce.File != file {
						t.Errorf("Error.File = %q, want %q", ce.File, file)
					}
					if len(ce.Problems) == 0 {
						t.Fatalf("Load(%q) returned an *Error with no problems", file)
					}
					got = renderProblems(ce.Problems, ce.Warnings)
				}
				wantFile := strings.TrimSuffix(file, ".yaml") + ".want"
				if *update {
					if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(wantFile)
				if err != nil {
					t.Fatalf("read %s: %v (run go test ./config -run TestGoldenConfigs -update)", wantFile, err)
				}
				if got != string(want) {
					t.Errorf("Load(%q) problems:\n%s\nwant (%s):\n%s", file, got, wantFile, want)
				}
			})
		}
	}
}

func errorsOnly(ps []FieldError) []FieldError {
	var out []FieldError
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}
