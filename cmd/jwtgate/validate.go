package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/jwtgate/jwtgate/config"
)

// validateCmd loads and checks a config and prints every problem as
// "path: message" (SPEC §1). Warnings do not fail it.
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "jwtgate validate -c gateway.yaml", stderr)
	path := fs.String("c", "gateway.yaml", "config file")
	fs.StringVar(path, "config", "gateway.yaml", "config file (same as -c)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 1 && *path == "gateway.yaml" {
		*path = fs.Arg(0) // "jwtgate validate FILE" is forgiven
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "validate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintln(stdout, p.Error())
			}
			for _, w := range ce.Warnings {
				fmt.Fprintln(stdout, "warning: "+w.Error())
			}
			fmt.Fprintf(stdout, "%s: %d problem(s); the config is not valid\n", *path, len(ce.Problems))
			return 1
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stdout, "warning: "+w.Error())
	}
	fmt.Fprintf(stdout, "%s: valid (config_version %s, %d providers, %d routes, %d warnings)\n", *path, cfg.Version, len(cfg.Providers), len(cfg.Routes), len(cfg.Warnings))
	return 0
}
