package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const watchConfigYAML = `
server: {address: "127.0.0.1:0", shutdown_grace: 5s}
admin: {address: "127.0.0.1:0"}
providers:
  - {name: main, issuer: "https://idp.test/", audiences: [api], jwks_url: "{{JWKS}}", algorithms: [ES256]}
routes:
  - {name: api, match: {path_prefix: /api}, upstream: {url: "{{BACKEND}}"}, auth: {providers: [main]}}
%s
audit: {output: file, file: "{{AUDIT}}"}
`

// configLayout is one way a config file reaches the gateway on disk, and
// the way its content is replaced there.
type configLayout struct {
	name string
	// setup writes the first content and returns the path to pass to
	// serve -c.
	setup func(t *testing.T, dir string, content []byte) string
	// replace puts new content in place the way the real writer does.
	replace func(t *testing.T, dir string, content []byte)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// configMapGen numbers the kubelet's timestamped data directories.
var configMapGen atomic.Int64

// writeConfigMap lays out dir as a Kubernetes ConfigMap volume does:
// dir/..<ts>/gateway.yaml, dir/..data -> ..<ts>, dir/gateway.yaml ->
// ..data/gateway.yaml. An update writes a new ..<ts>, points ..data_tmp at
// it and renames ..data_tmp over ..data (one atomic swap), then removes the
// old data directory.
func writeConfigMap(t *testing.T, dir string, content []byte) {
	t.Helper()
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", configMapGen.Add(1), os.Getpid())
	must(t, os.Mkdir(filepath.Join(dir, ts), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, ts, "gateway.yaml"), content, 0o600))
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	must(t, os.Symlink(ts, filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	if _, err := os.Lstat(filepath.Join(dir, "gateway.yaml")); os.IsNotExist(err) {
		must(t, os.Symlink(filepath.Join("..data", "gateway.yaml"), filepath.Join(dir, "gateway.yaml")))
	}
	if old != "" {
		must(t, os.RemoveAll(filepath.Join(dir, old)))
	}
}

var configLayouts = []configLayout{
	{
		name: "editor-write-temp-and-rename",
		setup: func(t *testing.T, dir string, c []byte) string {
			p := filepath.Join(dir, "gateway.yaml")
			must(t, os.WriteFile(p, c, 0o600))
			return p
		},
		replace: func(t *testing.T, dir string, c []byte) {
			tmp := filepath.Join(dir, ".gateway.yaml.swp")
			must(t, os.WriteFile(tmp, c, 0o600))
			must(t, os.Rename(tmp, filepath.Join(dir, "gateway.yaml")))
		},
	},
	{
		name: "in-place-write",
		setup: func(t *testing.T, dir string, c []byte) string {
			p := filepath.Join(dir, "gateway.yaml")
			must(t, os.WriteFile(p, c, 0o600))
			return p
		},
		replace: func(t *testing.T, dir string, c []byte) {
			must(t, os.WriteFile(filepath.Join(dir, "gateway.yaml"), c, 0o600))
		},
	},
	{
		name: "configmap-symlink-swap",
		setup: func(t *testing.T, dir string, c []byte) string {
			writeConfigMap(t, dir, c)
			return filepath.Join(dir, "gateway.yaml")
		},
		replace: writeConfigMap,
	},
	{
		// serve -c /etc/jwtgate/gateway.yaml, a symlink to a file in a
		// ConfigMap volume mounted elsewhere: the directory of -c never
		// changes, the swap happens in the other one.
		name: "symlink-into-configmap-elsewhere",
		setup: func(t *testing.T, dir string, c []byte) string {
			cm, etc := filepath.Join(dir, "cm"), filepath.Join(dir, "etc")
			must(t, os.Mkdir(cm, 0o755))
			must(t, os.Mkdir(etc, 0o755))
			writeConfigMap(t, cm, c)
			p := filepath.Join(etc, "gateway.yaml")
			must(t, os.Symlink(filepath.Join(cm, "gateway.yaml"), p))
			return p
		},
		replace: func(t *testing.T, dir string, c []byte) { writeConfigMap(t, filepath.Join(dir, "cm"), c) },
	},
}

// TestWatchReloadsOnFileReplacement pins issue 3 item 2 (serve --watch):
// the config is reloaded when an editor writes a temp file and renames it
// over the config, when it is rewritten in place, when a Kubernetes
// ConfigMap swaps its ..data symlink, and when the -c path is a symlink
// into such a volume elsewhere. Rewriting the same bytes reloads nothing;
// invalid content is rejected and counted, and the config in use keeps
// serving.
func TestWatchReloadsOnFileReplacement(t *testing.T) {
	for _, layout := range configLayouts {
		t.Run(layout.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			is, be := newIssuer(t, "k1"), newBackend(t)
			render := func(routes string) []byte {
				return []byte(strings.NewReplacer("{{JWKS}}", is.srv.URL, "{{BACKEND}}", be.srv.URL, "{{AUDIT}}", filepath.Join(dir, "audit.log")).
					Replace(fmt.Sprintf(watchConfigYAML, routes)))
			}
			confA := render("")
			confB := render(`  - {name: added, match: {path_prefix: /added}, upstream: {url: "` + be.srv.URL + `"}, auth: {mode: "off"}}`)
			path := layout.setup(t, dir, confA)
			g := startGateway(t, path, true, false)
			vA := g.configVersion(t)
			okReloads := func() float64 { return g.scrape(t, `jwtgate_config_reloads_total{result="ok"}`) }
			errReloads := func() float64 { return g.scrape(t, `jwtgate_config_reloads_total{result="error"}`) }
			get := func(p string) int {
				resp, err := http.Get(g.base + p)
				if err != nil {
					t.Fatalf("GET %s: %v", p, err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}

			layout.replace(t, dir, confA) // same bytes
			time.Sleep(3 * watchCoalesce)
			if n := okReloads() + errReloads(); n != 0 {
				t.Errorf("rewriting the same content caused %v reloads, want 0", n)
			}

			layout.replace(t, dir, confB)
			if !eventually(3*time.Second, func() bool { return g.configVersion(t) != vA }) {
				t.Fatal("the new content was not picked up")
			}
			if st := get("/added/x"); st != 200 {
				t.Errorf("route from the new config answered %d, want 200", st)
			}
			vB := g.configVersion(t)
			if n := okReloads(); n != 1 {
				t.Errorf("ok reloads = %v, want 1", n)
			}

			layout.replace(t, dir, []byte("routes: [{name: x, bogus: 1}]\n"))
			if !eventually(3*time.Second, func() bool { return errReloads() == 1 }) {
				t.Fatal("the invalid content was not rejected and counted")
			}
			if v := g.configVersion(t); v != vB {
				t.Errorf("config_version %s after a rejected file, want %s still serving", v, vB)
			}
			if st := get("/added/y"); st != 200 {
				t.Errorf("after a rejected file the config in use answered %d, want 200", st)
			}
		})
	}
}

// TestWatchPointsFollowSymlinks pins what --watch listens to for a
// ConfigMap-style path: the path's own entry, the ..data symlink it goes
// through, and the file it finally reads.
func TestWatchPointsFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeConfigMap(t, dir, []byte("x"))
	data, err := os.Readlink(filepath.Join(dir, "..data"))
	must(t, err)
	got := watchPoints(filepath.Join(dir, "gateway.yaml"))
	want := map[string]map[string]bool{
		dir:                      {"gateway.yaml": true, "..data": true},
		filepath.Join(dir, data): {"gateway.yaml": true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("watchPoints = %v, want %v", got, want)
	}
}
