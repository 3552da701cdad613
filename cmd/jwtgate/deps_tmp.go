package main

import (
	_ "github.com/MicahParks/jwkset"
	_ "github.com/MicahParks/keyfunc/v3"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/rs/zerolog"
	_ "github.com/rs/zerolog/diode"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/net/http2"
	_ "golang.org/x/net/http2/h2c"
	_ "golang.org/x/time/rate"
	_ "golang.org/x/sync/singleflight"
	_ "gopkg.in/natefinch/lumberjack.v2"
)

func main() {}
