package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/jwtgate/jwtgate/config"
)

// The deployment checks below run in CI like any test: the manifests
// under deploy/ must parse, and what they say about the binary (flags,
// probe paths and ports, the config they mount, shutdown timing) must
// match the binary and the config loader.

// k8sObject is one decoded Kubernetes manifest document.
type k8sObject = map[string]any

// dig walks m along path (string keys, int indexes) and returns what is
// there, or nil.
func dig(m any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			mm, ok := m.(map[string]any)
			if !ok {
				return nil
			}
			m = mm[p]
		case int:
			l, ok := m.([]any)
			if !ok || p >= len(l) {
				return nil
			}
			m = l[p]
		}
	}
	return m
}

func digString(m any, path ...any) string { s, _ := dig(m, path...).(string); return s }

func digInt(m any, path ...any) (int, bool) { n, ok := dig(m, path...).(int); return n, ok }

// loadK8sManifests decodes every document of every YAML file in dir.
func loadK8sManifests(t *testing.T, dir string) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	out := map[string][]k8sObject{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", filepath.Base(f), i, err)
			}
			if doc == nil {
				continue // an empty document between "---" lines
			}
			if digString(doc, "apiVersion") == "" || digString(doc, "kind") == "" {
				t.Errorf("%s: document %d has no apiVersion or kind", filepath.Base(f), i)
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], doc)
		}
	}
	return out
}

// onlyKind returns the single object of kind among the manifests.
func onlyKind(t *testing.T, all map[string][]k8sObject, kind string) k8sObject {
	t.Helper()
	var found []k8sObject
	for _, docs := range all {
		for _, d := range docs {
			if digString(d, "kind") == kind {
				found = append(found, d)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("found %d objects of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

// serveFlagSet returns the flags `jwtgate serve -h` documents, each with
// whether it takes a value, read from the binary's own help output.
func serveFlagSet(t *testing.T) map[string]bool {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("serve -h exit code %d, want 0\n%s", code, stderr.String())
	}
	help := stdout.String() + stderr.String()
	// flag.PrintDefaults: "  -c string" (takes a value) or "  -watch".
	re := regexp.MustCompile(`(?m)^  -([A-Za-z0-9][A-Za-z0-9-]*)(?: ([a-z]+))?$`)
	flags := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(help, -1) {
		flags[m[1]] = m[2] != ""
	}
	if !flags["c"] || len(flags) < 2 {
		t.Fatalf("could not read serve's flags from its help:\n%s", help)
	}
	return flags
}

// checkServeArgs checks a command line after the binary name ("serve",
// flags...) against serve's flags and returns the -c / --config value and
// the flags used.
func checkServeArgs(t *testing.T, where string, args []string) (cfgPath string, used map[string]bool) {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: args %q, want the serve command first", where, args)
	}
	flags := serveFlagSet(t)
	used = map[string]bool{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: unexpected argument %q (serve takes flags only)", where, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := flags[name]
		if !ok {
			t.Errorf("%s: flag %q is not a flag of jwtgate serve (have %v)", where, a, flags)
			continue
		}
		used[name] = true
		if takesValue && !hasVal {
			if i+1 >= len(args) {
				t.Errorf("%s: flag %q has no value", where, a)
				continue
			}
			i++
			val = args[i]
		}
		if name == "c" || name == "config" {
			cfgPath = val
		}
	}
	if cfgPath == "" {
		t.Errorf("%s: args %q name no config file (-c)", where, args)
	}
	return cfgPath, used
}

// containerPort resolves a probe or Service port (a number, or a port
// name) to the container's port number.
func containerPort(t *testing.T, container any, port any) int {
	t.Helper()
	ports, _ := dig(container, "ports").([]any)
	for _, p := range ports {
		n, _ := digInt(p, "containerPort")
		switch port := port.(type) {
		case int:
			if n == port {
				return n
			}
		case string:
			if digString(p, "name") == port {
				return n
			}
		}
	}
	t.Fatalf("port %v is not a containerPort of the container", port)
	return 0
}

// portOf returns the port number of a listen address such as ":8080" and
// whether its host is reachable from outside the container.
func portOf(t *testing.T, field, addr string) (port int, external bool) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", field, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q: port: %v", field, addr, err)
	}
	return n, host == "" || host == "0.0.0.0" || host == "::"
}

// TestKubernetesManifestsMatchBinary pins deploy/kubernetes to the binary:
// every manifest parses; the container's args are flags `jwtgate serve`
// accepts and name the file the ConfigMap provides; that file loads with
// config.Parse using only the secrets the Deployment injects; the probes
// hit /healthz and /readyz on the port admin.address listens on (on all
// interfaces); the Service targets the port server.address listens on; a
// rollout keeps capacity; SIGKILL comes only after shutdown_grace; the pod
// runs non-root on a read-only root file system; and the PDB, HPA and
// kustomization point at what exists.
func TestKubernetesManifestsMatchBinary(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	all := loadK8sManifests(t, dir)

	dep := onlyKind(t, all, "Deployment")
	cm := onlyKind(t, all, "ConfigMap")
	svc := onlyKind(t, all, "Service")
	pdb := onlyKind(t, all, "PodDisruptionBudget")
	hpa := onlyKind(t, all, "HorizontalPodAutoscaler")

	pod := dig(dep, "spec", "template", "spec")
	containers, _ := dig(pod, "containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(containers))
	}
	c := containers[0]
	if img := digString(c, "image"); !strings.HasPrefix(img, "ghcr.io/jwtgate/jwtgate:") {
		t.Errorf("image = %q, want ghcr.io/jwtgate/jwtgate:TAG", img)
	}
	if n, _ := digInt(dep, "spec", "replicas"); n < 2 {
		t.Errorf("replicas = %d, want at least 2", n)
	}

	// Args: serve's own flags, and the config file the ConfigMap provides.
	var args []string
	for _, a := range dig(c, "args").([]any) {
		args = append(args, a.(string))
	}
	cfgPath, used := checkServeArgs(t, "deployment args", args)
	if !used["watch"] {
		t.Errorf("args %q lack --watch; ConfigMap edits would need a restart", args)
	}
	var mountPath, volName string
	for _, m := range dig(c, "volumeMounts").([]any) {
		if mp := digString(m, "mountPath"); mp == filepath.Dir(cfgPath) {
			mountPath, volName = mp, digString(m, "name")
			if digString(m, "subPath") != "" {
				t.Errorf("volumeMount %s uses subPath; subPath mounts never see ConfigMap updates", mp)
			}
			if dig(m, "readOnly") != true {
				t.Errorf("volumeMount %s is not readOnly", mp)
			}
		}
	}
	if mountPath == "" {
		t.Fatalf("no volumeMount at %s, the directory of -c %s", filepath.Dir(cfgPath), cfgPath)
	}
	var cmName string
	for _, v := range dig(pod, "volumes").([]any) {
		if digString(v, "name") == volName {
			cmName = digString(v, "configMap", "name")
		}
	}
	if cmName != digString(cm, "metadata", "name") {
		t.Fatalf("volume %s mounts ConfigMap %q, want %q", volName, cmName, digString(cm, "metadata", "name"))
	}
	data := digString(cm, "data", filepath.Base(cfgPath))
	if data == "" {
		t.Fatalf("ConfigMap %s has no key %s (from -c %s)", cmName, filepath.Base(cfgPath), cfgPath)
	}

	// The config loads with exactly the secrets the Deployment injects.
	injected := 0
	envs, _ := dig(c, "env").([]any)
	for _, e := range envs {
		if dig(e, "valueFrom", "secretKeyRef") == nil {
			continue
		}
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		t.Setenv(digString(e, "name"), "base64:"+base64.StdEncoding.EncodeToString(secret))
		injected++
		if !strings.Contains(data, "secret_env: "+digString(e, "name")) {
			t.Errorf("env %s comes from a Secret but no secret_env in the config names it", digString(e, "name"))
		}
	}
	cfg, err := config.Parse([]byte(data), mountPath)
	if err != nil {
		t.Fatalf("ConfigMap %s: config.Parse() error = %v (with %d secrets from the Deployment's env)", cmName, err, injected)
	}
	for _, w := range cfg.Warnings {
		t.Errorf("ConfigMap config warning: %v", w)
	}
	if cfg.Audit.Output != "stdout" {
		t.Errorf("audit.output = %q, want stdout for the cluster's log pipeline", cfg.Audit.Output)
	}

	// Probes on the admin listener, which must listen on the pod IP.
	adminPort, external := portOf(t, "admin.address", cfg.Admin.Address)
	if !external {
		t.Errorf("admin.address %q listens on loopback only; the kubelet's probes cannot reach it", cfg.Admin.Address)
	}
	for _, p := range []struct{ probe, path string }{{"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}} {
		if got := digString(c, p.probe, "httpGet", "path"); got != p.path {
			t.Errorf("%s path = %q, want %s", p.probe, got, p.path)
		}
		if got := containerPort(t, c, dig(c, p.probe, "httpGet", "port")); got != adminPort {
			t.Errorf("%s port = %d, want admin.address port %d", p.probe, got, adminPort)
		}
	}
	if got := containerPort(t, c, "admin"); got != adminPort {
		t.Errorf("port admin = %d, want admin.address port %d", got, adminPort)
	}

	// The Service reaches the public listener, and never the admin one.
	publicPort, _ := portOf(t, "server.address", cfg.Server.Address)
	if got := containerPort(t, c, "http"); got != publicPort {
		t.Errorf("port http = %d, want server.address port %d", got, publicPort)
	}
	for _, sp := range dig(svc, "spec", "ports").([]any) {
		got := containerPort(t, c, dig(sp, "targetPort"))
		if got == adminPort {
			t.Errorf("Service exposes the admin port %d", got)
		} else if got != publicPort {
			t.Errorf("Service targetPort %v = %d, want server.address port %d", dig(sp, "targetPort"), got, publicPort)
		}
	}

	// Shutdown: the kubelet waits for preStop and then shutdown_grace.
	grace, _ := digInt(pod, "terminationGracePeriodSeconds")
	preStop, _ := digInt(c, "lifecycle", "preStop", "sleep", "seconds")
	if need := time.Duration(preStop)*time.Second + cfg.Server.ShutdownGrace; time.Duration(grace)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds = %d, want more than preStop sleep %ds + shutdown_grace %s", grace, preStop, cfg.Server.ShutdownGrace)
	}
	if n, ok := digInt(dep, "spec", "strategy", "rollingUpdate", "maxUnavailable"); !ok || n != 0 {
		t.Errorf("rollingUpdate.maxUnavailable = %v, want 0", dig(dep, "spec", "strategy", "rollingUpdate", "maxUnavailable"))
	}
	if n, ok := digInt(dep, "spec", "strategy", "rollingUpdate", "maxSurge"); !ok || n < 1 {
		t.Errorf("rollingUpdate.maxSurge = %v, want at least 1", dig(dep, "spec", "strategy", "rollingUpdate", "maxSurge"))
	}

	// Security context: the container's, else the pod's.
	sc := func(path ...any) any {
		if v := dig(c, append([]any{"securityContext"}, path...)...); v != nil {
			return v
		}
		return dig(pod, append([]any{"securityContext"}, path...)...)
	}
	for _, want := range []struct {
		path []any
		val  any
	}{
		{[]any{"runAsNonRoot"}, true},
		{[]any{"runAsUser"}, 65532},
		{[]any{"readOnlyRootFilesystem"}, true},
		{[]any{"allowPrivilegeEscalation"}, false},
		{[]any{"seccompProfile", "type"}, "RuntimeDefault"},
	} {
		if got := sc(want.path...); got != want.val {
			t.Errorf("securityContext.%v = %v, want %v", want.path, got, want.val)
		}
	}
	if drop, _ := sc("capabilities", "drop").([]any); !slices.Contains(drop, any("ALL")) {
		t.Errorf("securityContext.capabilities.drop = %v, want ALL", drop)
	}
	for _, r := range []string{"requests.cpu", "requests.memory", "limits.memory"} {
		kind, res, _ := strings.Cut(r, ".")
		if dig(c, "resources", kind, res) == nil {
			t.Errorf("resources.%s missing", r)
		}
	}

	// Selectors and references.
	podLabels, _ := dig(dep, "spec", "template", "metadata", "labels").(map[string]any)
	matches := func(what string, sel any) {
		m, _ := sel.(map[string]any)
		if len(m) == 0 {
			t.Errorf("%s selector is empty", what)
		}
		for k, v := range m {
			if podLabels[k] != v {
				t.Errorf("%s selector %s=%v does not match the pod labels %v", what, k, v, podLabels)
			}
		}
	}
	matches("Deployment", dig(dep, "spec", "selector", "matchLabels"))
	matches("Service", dig(svc, "spec", "selector"))
	matches("PodDisruptionBudget", dig(pdb, "spec", "selector", "matchLabels"))
	if n, ok := digInt(pdb, "spec", "minAvailable"); !ok || n != 1 {
		t.Errorf("PDB minAvailable = %v, want 1", dig(pdb, "spec", "minAvailable"))
	}
	if digString(hpa, "apiVersion") != "autoscaling/v2" {
		t.Errorf("HPA apiVersion = %q, want autoscaling/v2", digString(hpa, "apiVersion"))
	}
	if digString(hpa, "spec", "scaleTargetRef", "kind") != "Deployment" || digString(hpa, "spec", "scaleTargetRef", "name") != digString(dep, "metadata", "name") {
		t.Errorf("HPA scaleTargetRef = %v, want the Deployment %s", dig(hpa, "spec", "scaleTargetRef"), digString(dep, "metadata", "name"))
	}
	if n, _ := digInt(hpa, "spec", "minReplicas"); n < 2 {
		t.Errorf("HPA minReplicas = %d, want at least 2 (one pod is no high availability)", n)
	}
	if digString(hpa, "spec", "metrics", 0, "resource", "name") != "cpu" {
		t.Errorf("HPA metric = %v, want cpu", dig(hpa, "spec", "metrics", 0))
	}
	if n, _ := digInt(hpa, "spec", "metrics", 0, "resource", "target", "averageUtilization"); n != 70 {
		t.Errorf("HPA CPU target = %d%%, want 70%%", n)
	}

	// The kustomization lists every manifest file, and only those.
	kust := all["kustomization.yaml"]
	if len(kust) != 1 {
		t.Fatalf("kustomization.yaml: %d documents, want 1", len(kust))
	}
	var listed []string
	for _, r := range dig(kust[0], "resources").([]any) {
		listed = append(listed, r.(string))
	}
	var files []string
	for f := range all {
		if f != "kustomization.yaml" {
			files = append(files, f)
		}
	}
	slices.Sort(listed)
	slices.Sort(files)
	if !slices.Equal(listed, files) {
		t.Errorf("kustomization resources = %v, want the manifest files %v", listed, files)
	}
}

// systemdUnit parses a unit file into "Section.Key" → values (a key may
// repeat), skipping comments.
func systemdUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a Key=Value line in a section: %q", path, n, line)
			}
			unit[section+"."+strings.TrimSpace(k)] = append(unit[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return unit
}

// TestSystemdUnitMatchesBinary pins deploy/systemd/jwtgate.service: it
// starts `jwtgate serve` with flags the binary accepts, reloads with
// SIGHUP, gives the drain more time than shutdown_grace before SIGKILL,
// and keeps its sandbox (no privileges, read-only system, no capabilities).
func TestSystemdUnitMatchesBinary(t *testing.T) {
	unit := systemdUnit(t, filepath.Join(repoRoot(t), "deploy", "systemd", "jwtgate.service"))
	one := func(key string) string {
		t.Helper()
		v := unit[key]
		if len(v) != 1 {
			t.Errorf("%s set %d times, want once", key, len(v))
			return ""
		}
		return v[0]
	}

	exec := strings.Fields(one("Service.ExecStart"))
	if len(exec) < 2 || filepath.Base(exec[0]) != "jwtgate" {
		t.Fatalf("ExecStart = %q, want the jwtgate binary", exec)
	}
	if cfg, _ := checkServeArgs(t, "ExecStart", exec[1:]); !filepath.IsAbs(cfg) {
		t.Errorf("ExecStart config %q is not absolute", cfg)
	}
	if !strings.Contains(one("Service.ExecStart"), "serve -c ") {
		t.Errorf("ExecStart = %q, want serve -c FILE", one("Service.ExecStart"))
	}
	if got := one("Service.ExecReload"); !regexp.MustCompile(`kill -(HUP|s HUP|SIGHUP) \$MAINPID$`).MatchString(got) {
		t.Errorf("ExecReload = %q, want kill -HUP $MAINPID (SIGHUP reloads the config)", got)
	}

	stop := one("Service.TimeoutStopSec")
	d, err := time.ParseDuration(stop)
	if _, nerr := strconv.Atoi(stop); nerr == nil {
		d, err = time.ParseDuration(stop + "s")
	}
	if err != nil || d <= config.DefaultShutdownGrace {
		t.Errorf("TimeoutStopSec = %q, want more than the default shutdown_grace %s", stop, config.DefaultShutdownGrace)
	}

	for key, want := range map[string]string{
		"Service.Type":                  "simple",
		"Service.Restart":               "on-failure",
		"Service.NoNewPrivileges":       "yes",
		"Service.ProtectSystem":         "strict",
		"Service.ProtectHome":           "yes",
		"Service.PrivateTmp":            "yes",
		"Service.CapabilityBoundingSet": "",
		"Service.AmbientCapabilities":   "",
		"Service.ReadWritePaths":        "/var/log/jwtgate",
	} {
		if got := one(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if one("Service.LimitNOFILE") == "" {
		t.Errorf("LimitNOFILE unset")
	}
	if u, dyn := one("Service.User"), unit["Service.DynamicUser"]; (u == "" || u == "root") && !slices.Contains(dyn, "yes") {
		t.Errorf("User = %q, want a dedicated user (or DynamicUser=yes)", u)
	}
}

// TestSchemaCommandPrintsGeneratedSchema pins `jwtgate schema`: it prints
// config.JSONSchema() to stdout, writes the same bytes with -o, and treats
// a stray argument as bad usage.
func TestSchemaCommandPrintsGeneratedSchema(t *testing.T) {
	want, err := config.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"schema"}, &stdout, &stderr); code != 0 || !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("schema: exit %d, %d bytes on stdout, want 0 and the %d-byte schema\n%s", code, stdout.Len(), len(want), stderr.String())
	}

	out := filepath.Join(t.TempDir(), "jwtgate.schema.json")
	stdout.Reset()
	if code := run([]string{"schema", "-o", out}, &stdout, &stderr); code != 0 || stdout.Len() != 0 {
		t.Fatalf("schema -o: exit %d, stdout %q, want 0 and nothing", code, stdout.String())
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
		t.Errorf("schema -o wrote %d bytes (%v), want the %d-byte schema", len(got), err, len(want))
	}

	if code := run([]string{"schema", "extra"}, &stdout, &stderr); code != 2 {
		t.Errorf("schema extra: exit %d, want 2", code)
	}
	if code := run([]string{"schema", "-o", filepath.Join(out, "not-a-dir", "x.json")}, &stdout, &stderr); code != 1 {
		t.Errorf("schema -o unwritable: exit %d, want 1", code)
	}
}

// exportedSeries returns the series names the metrics package defines:
// the Name of every prometheus *Opts literal in its non-test sources, with
// the _bucket, _sum and _count series of histograms. Reading the source
// keeps this independent of which label values have been observed.
func exportedSeries(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				sel, ok := lit.Type.(*ast.SelectorExpr)
				if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				for _, e := range lit.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok || fmt.Sprint(kv.Key) != "Name" {
						continue
					}
					if bl, ok := kv.Value.(*ast.BasicLit); ok {
						name, _ := strconv.Unquote(bl.Value)
						names[name] = true
						if sel.Sel.Name == "HistogramOpts" {
							for _, s := range []string{"_bucket", "_sum", "_count"} {
								names[name+s] = true
							}
						}
					}
				}
				return true
			})
		}
	}
	if len(names) < 10 {
		t.Fatalf("found %d series in %s, want every SPEC §7 series", len(names), dir)
	}
	return names
}

// TestAlertRulesNameExistingSeries pins deploy/prometheus/alerts.yaml and
// the PromQL in docs/operations.md to the binary's /metrics: every
// jwtgate_* series they name is one the metrics package defines, so a
// renamed metric cannot leave an alert that silently never fires.
func TestAlertRulesNameExistingSeries(t *testing.T) {
	exported := exportedSeries(t, filepath.Join(repoRoot(t), "metrics"))

	root := repoRoot(t)
	rulesPath := filepath.Join(root, "deploy", "prometheus", "alerts.yaml")
	data, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(false)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: group %s: a rule without alert or expr", rulesPath, g.Name)
			}
		}
	}
	if n < 8 {
		t.Errorf("%s: %d rules, want the alerts docs/operations.md describes", rulesPath, n)
	}

	docs, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	series := regexp.MustCompile(`\bjwtgate_[a-z0-9_]*[a-z0-9]\b`)
	for name, text := range map[string][]byte{"alerts.yaml": data, "operations.md": docs} {
		found := series.FindAllString(string(text), -1)
		if len(found) == 0 {
			t.Errorf("%s names no jwtgate series", name)
		}
		for _, s := range found {
			if !exported[s] {
				t.Errorf("%s names %s, which /metrics does not export", name, s)
			}
		}
	}
}
