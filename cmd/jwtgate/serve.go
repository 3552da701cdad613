package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/jwtgate/jwtgate/audit"
	"github.com/jwtgate/jwtgate/config"
	"github.com/jwtgate/jwtgate/jwks"
	"github.com/jwtgate/jwtgate/metrics"
	"github.com/jwtgate/jwtgate/proxy"
)

// rfc3339ms is SPEC §5's time format; zerolog's is a process global, so
// it is set once here, in main's package.
const rfc3339ms = "2006-01-02T15:04:05.000Z07:00"

func init() { zerolog.TimeFieldFormat = rfc3339ms }

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "jwtgate serve -c gateway.yaml [--watch] [--log-level info]", stderr)
	path := fs.String("c", "gateway.yaml", "config file")
	fs.StringVar(path, "config", "gateway.yaml", "config file (same as -c)")
	watch := fs.Bool("watch", false, "reload when the config file, or the TLS certificate or key, changes (SIGHUP always reloads)")
	level := fs.String("log-level", "info", "operational log level: debug, info, warn, error")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil {
		fmt.Fprintf(stderr, "serve: --log-level: %v\n", err)
		return 2
	}
	logger := zerolog.New(stderr).Level(lvl).With().Timestamp().Str("service", "jwtgate").Logger()

	cfg, err := config.Load(*path)
	if err != nil {
		printLoadError(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		logger.Warn().Str("field", w.Path).Msg(w.Msg)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := startServer(ctx, cfg, serverOptions{Logger: logger, Stdout: stdout, Watch: *watch})
	if err != nil {
		logger.Error().Err(err).Msg("start failed")
		return 1
	}
	return s.run(ctx)
}

// serverOptions are the process-level choices serve and demo make.
type serverOptions struct {
	Logger zerolog.Logger
	Stdout io.Writer // audit "stdout" output
	Watch  bool
	// Listeners, when set, are used instead of listening on the configured
	// addresses (demo and tests).
	Public, Admin net.Listener
	// NoSignals disables SIGHUP handling (demo, tests).
	NoSignals bool
}

// server is one running gateway process: listeners, the current config
// and the audit writer.
type server struct {
	opts     serverOptions
	log      zerolog.Logger
	metrics  *metrics.Metrics
	audit    *audit.Writer
	handler  *proxy.Handler
	public   *http.Server
	admin    *http.Server
	pubLn    net.Listener
	adminLn  net.Listener
	started  time.Time
	buildCtx context.Context
	cancel   context.CancelFunc
	reloadMu sync.Mutex
	cert     atomic.Pointer[tls.Certificate]
	ready    atomic.Bool
	path     string
	// hup receives SIGHUP; registered in startServer, so a SIGHUP that
	// arrives once the listeners are open reloads instead of killing the
	// process. Nil with NoSignals.
	hup chan os.Signal

	// Refresh events that arrive before the startup record is written
	// (the first key fetches happen while the Gateway is built) wait here,
	// so startup is the first record of the process.
	evMu     sync.Mutex
	evReady  bool
	evQueued []jwks.RefreshEvent
}

func startServer(ctx context.Context, cfg *config.Config, opts serverOptions) (*server, error) {
	s := &server{opts: opts, log: opts.Logger, metrics: metrics.New(), started: time.Now(), path: cfg.Path}
	s.metrics.Touch()
	aw, err := audit.New(cfg.Audit, audit.Options{Stdout: opts.Stdout, ConfigVersion: cfg.Version, Logger: s.log}) // audit adds its own component field
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	s.audit = aw
	s.metrics.SetAuditSource(func() (uint64, uint64) { return aw.Written(), aw.Dropped() })
	s.metrics.SetAuditWaitSource(func() (uint64, uint64) { return aw.Waits(), aw.WaitNanos() })

	// Key sources live until shutdown (or until a reload retires them),
	// not until the signal context ends: in-flight requests still need them.
	s.buildCtx, s.cancel = context.WithCancel(context.Background())
	g, err := proxy.Build(s.buildCtx, cfg, s.deps(), nil)
	if err != nil {
		s.cancel()
		_ = aw.Close()
		return nil, err
	}
	s.handler = proxy.NewHandler(g)
	// Listen before the startup record: a process that cannot bind its
	// ports never claims in the audit trail to have started.
	if err := s.listen(cfg); err != nil {
		g.Retire(nil)
		s.cancel()
		_ = aw.Close()
		return nil, err
	}
	aw.Startup(startupInfo(g, version))
	s.evMu.Lock()
	s.evReady = true
	queued := s.evQueued
	s.evQueued = nil
	for _, ev := range queued {
		s.recordRefresh(ev)
	}
	s.evMu.Unlock()
	if !opts.NoSignals {
		s.hup = make(chan os.Signal, 1)
		signal.Notify(s.hup, syscall.SIGHUP)
	}
	s.ready.Store(true)
	return s, nil
}

// deps are the collaborators every Gateway of this process shares.
func (s *server) deps() proxy.Deps {
	return proxy.Deps{
		Logger:    s.log, // proxy and jwks add their own component fields
		Audit:     s.audit,
		Metrics:   s.metrics,
		OnRefresh: s.onRefresh,
	}
}

// onRefresh records a JWKS fetch in the audit trail and metrics and evicts
// cached verifications made with removed keys.
func (s *server) onRefresh(ev jwks.RefreshEvent) {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	if !s.evReady {
		s.evQueued = append(s.evQueued, ev)
		return
	}
	s.recordRefresh(ev)
}

func (s *server) recordRefresh(ev jwks.RefreshEvent) {
	s.metrics.JWKSRefresh(ev.Provider, ev.Result, ev.Keys)
	if ev.Err != nil {
		s.log.Warn().Err(ev.Err).Str("provider", ev.Provider).Str("source", ev.Source).Str("trigger", ev.Trigger).Int("keys", ev.Keys).Msg("jwks fetch failed; last good keys stay in use")
	}
	s.audit.JWKSRefresh(refreshInfo(ev))
	s.handler.KeysChanged(ev)
}

func (s *server) listen(cfg *config.Config) error {
	sc := cfg.Server
	s.public = &http.Server{
		Handler:           s.handler, // refuses h2c upgrade offers itself (proxy.Handler)
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		ErrorLog:          log.New(s.log.With().Str("component", "http").Logger(), "", 0),
	}
	if sc.H2C {
		// Cleartext HTTP/2 with prior knowledge (gRPC without TLS), only
		// when configured; HTTP/1.1 stays available.
		s.public.Protocols = new(http.Protocols)
		s.public.Protocols.SetHTTP1(true)
		s.public.Protocols.SetHTTP2(true) // over TLS, when server.tls is set too
		s.public.Protocols.SetUnencryptedHTTP2(true)
	}
	if sc.TLS != nil {
		if _, err := s.loadCert(sc.TLS); err != nil {
			return err
		}
		s.public.TLSConfig = &tls.Config{
			// TLS 1.0 and 1.1 are refused; Go's default cipher suites and
			// curves for 1.2 are the modern set (ECDHE, AEAD only).
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.cert.Load(), nil
			},
			NextProtos: []string{"h2", "http/1.1"},
		}
	}
	var err error
	if s.pubLn = s.opts.Public; s.pubLn == nil {
		if s.pubLn, err = net.Listen("tcp", sc.Address); err != nil {
			return fmt.Errorf("server.address: %w", err)
		}
	}
	if s.adminLn = s.opts.Admin; s.adminLn == nil && cfg.Admin.Address != "" {
		if s.adminLn, err = net.Listen("tcp", cfg.Admin.Address); err != nil {
			s.pubLn.Close()
			return fmt.Errorf("admin.address: %w", err)
		}
	}
	if s.adminLn != nil {
		s.admin = &http.Server{Handler: s.adminMux(cfg.Admin.Pprof), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	}
	return nil
}

// loadCert reads the certificate and key and makes them the ones new TLS
// connections get. changed is false when the files hold the certificate
// already in use.
func (s *server) loadCert(t *config.TLS) (changed bool, err error) {
	c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return false, fmt.Errorf("server.tls: %w", err)
	}
	old := s.cert.Load()
	s.cert.Store(&c)
	return old == nil || !sameChain(old.Certificate, c.Certificate), nil
}

func sameChain(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// reloadCert reads server.tls of the config in use again, so that a
// renewed certificate (cert-manager, certbot) takes effect on SIGHUP
// without a restart and whether or not the YAML changed. A failure keeps
// the old certificate.
func (s *server) reloadCert(trigger string) {
	t := s.handler.Current().Config().Server.TLS
	if t == nil || s.public == nil || s.public.TLSConfig == nil {
		return
	}
	changed, err := s.loadCert(t)
	switch {
	case err != nil:
		s.log.Error().Err(err).Str("trigger", trigger).Msg("tls certificate reload failed; the old certificate stays")
	case changed:
		s.log.Info().Str("trigger", trigger).Str("cert_file", t.CertFile).Msg("tls certificate reloaded")
	}
}

// run serves until ctx ends, reloading on SIGHUP (and file changes with
// --watch), then shuts down within shutdown_grace and flushes the audit log.
func (s *server) run(ctx context.Context) int {
	errc := make(chan error, 2)
	go func() {
		var err error
		if s.public.TLSConfig != nil {
			err = s.public.ServeTLS(s.pubLn, "", "")
		} else {
			err = s.public.Serve(s.pubLn)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("public listener: %w", err)
		}
	}()
	if s.admin != nil {
		go func() {
			if err := s.admin.Serve(s.adminLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin listener: %w", err)
			}
		}()
	}
	s.log.Info().Str("address", s.pubLn.Addr().String()).Str("config_version", s.handler.Current().Config().Version).Msg("jwtgate serving")

	if s.hup != nil {
		defer signal.Stop(s.hup)
	}
	if s.opts.Watch {
		stopWatch, err := watchFiles(ctx, s.watchedFiles, s.log, func() { s.reload("watch") })
		if err != nil {
			s.log.Error().Err(err).Msg("--watch disabled")
		} else {
			defer stopWatch()
		}
	}
	code := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-s.hup: // nil with NoSignals: never ready
			s.reload("sighup")
		case err := <-errc:
			s.log.Error().Err(err).Msg("listener failed")
			code = 1
			break loop
		}
	}
	s.shutdown("signal")
	return code
}

// shutdown stops accepting, lets in-flight requests finish within
// shutdown_grace, then writes the shutdown record and flushes the audit log.
func (s *server) shutdown(reason string) {
	s.ready.Store(false)
	g := s.handler.Current()
	grace := g.Config().Server.ShutdownGrace
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.public.Shutdown(ctx); err != nil {
		s.log.Warn().Err(err).Msg("in-flight requests cut off at shutdown_grace")
		_ = s.public.Close()
	}
	if s.admin != nil {
		_ = s.admin.Shutdown(ctx)
	}
	g.Retire(nil)
	s.cancel()
	_ = s.audit.Flush() // so Written counts every record handed in so far
	s.audit.Shutdown(audit.ShutdownInfo{Reason: reason, Uptime: time.Since(s.started), Records: s.audit.Written(), Dropped: s.audit.Dropped()})
	if err := s.audit.Close(); err != nil {
		s.log.Error().Err(err).Msg("audit flush failed")
	}
	s.log.Info().Msg("jwtgate stopped")
}

// watchedFiles are the files --watch follows: the config and the TLS
// certificate and key of the config in use.
func (s *server) watchedFiles() []string {
	files := []string{s.path}
	if t := s.handler.Current().Config().Server.TLS; t != nil {
		files = append(files, t.CertFile, t.KeyFile)
	}
	return files
}

// reload loads the config file again and swaps it in when valid, then
// reads the TLS certificate and key again. An invalid file is rejected and
// the old config keeps serving; either way the attempt is logged, counted
// and audited. The certificate is reloaded in both cases, from the config
// that serves afterwards.
func (s *server) reload(trigger string) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.reloadConfig(trigger)
	s.reloadCert(trigger)
}

func (s *server) reloadConfig(trigger string) {
	old := s.handler.Current()
	oldVer := old.Config().Version
	fail := func(newVer string, err error) {
		s.log.Error().Err(err).Str("trigger", trigger).Msg("config reload rejected; the old config keeps serving")
		s.metrics.ConfigReload("error")
		s.audit.ConfigReload(audit.ReloadInfo{Result: "error", OldVersion: oldVer, NewVersion: newVer, Error: firstLine(err.Error())})
	}
	cfg, err := config.Load(s.path)
	if err != nil {
		fail(fileVersion(s.path), err)
		return
	}
	if cfg.Version == oldVer && trigger == "watch" {
		return // an editor touched the file without changing it
	}
	if restartOnly(old.Config(), cfg) {
		s.log.Warn().Msg("changes to server.address, server.tls (on or off), server.h2c, the server timeouts and limits, admin.address and admin.pprof take effect on restart")
	}
	g, err := proxy.Build(s.buildCtx, cfg, s.deps(), old)
	if err != nil {
		fail(cfg.Version, err)
		return
	}
	s.handler.Swap(g)
	old.Retire(g)
	for name := range old.Providers() {
		if g.Config().ProviderByName(name) == nil {
			s.metrics.ForgetProvider(name) // no stale key gauges for retired providers
		}
	}
	s.audit.SetConfigVersion(cfg.Version)
	s.metrics.ConfigReload("ok")
	s.audit.ConfigReload(audit.ReloadInfo{Result: "ok", OldVersion: oldVer, NewVersion: cfg.Version})
	s.log.Info().Str("trigger", trigger).Str("old_config_version", oldVer).Str("config_version", cfg.Version).Msg("config reloaded")
}

// restartOnly reports whether next changes listener settings that a reload
// cannot apply to the running listeners.
func restartOnly(prev, next *config.Config) bool {
	a, b := prev.Server, next.Server
	return a.Address != b.Address || (a.TLS == nil) != (b.TLS == nil) || a.H2C != b.H2C ||
		a.ReadHeaderTimeout != b.ReadHeaderTimeout || a.IdleTimeout != b.IdleTimeout || a.MaxHeaderBytes != b.MaxHeaderBytes ||
		prev.Admin != next.Admin
}

// fileVersion is config_version of whatever the file holds now, also when
// it does not load.
func fileVersion(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}

// printLoadError prints every config problem as "path: message".
func printLoadError(w io.Writer, err error) {
	var ce *config.Error
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintln(w, p.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}
