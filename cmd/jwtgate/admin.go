package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"
)

// adminMux serves /healthz, /readyz and /metrics (SPEC §7), and pprof
// when admin.pprof is set. It is never mounted on the public listener.
func (s *server) adminMux(withPprof bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := s.readiness()
		if !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "reason": "providers without usable keys", "providers": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "config_version": s.handler.Current().Config().Version})
	})
	prom := s.metrics.Handler()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		s.updateKeyGauges()
		prom.ServeHTTP(w, r)
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// readiness is true once the config is loaded and every provider has keys
// no older than max_stale; otherwise it names the providers and why.
func (s *server) readiness() (bool, map[string]string) {
	why := map[string]string{}
	if !s.ready.Load() {
		why["gateway"] = "not serving"
	}
	for name, p := range s.handler.Current().Providers() {
		if ok, reason := p.Ready(); !ok {
			why[name] = reason
		}
	}
	return len(why) == 0, why
}

// updateKeyGauges refreshes jwtgate_jwks_keys and jwtgate_jwks_age_seconds
// at scrape time.
func (s *server) updateKeyGauges() {
	now := time.Now()
	provs := s.handler.Current().Providers()
	names := make([]string, 0, len(provs))
	for n := range provs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := provs[n]
		age := -1.0
		if t := p.LastGoodFetch(); !t.IsZero() {
			age = now.Sub(t).Seconds()
		}
		s.metrics.JWKSState(n, p.KeyCount(), age)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
