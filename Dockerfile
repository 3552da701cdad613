# syntax=docker/dockerfile:1
# The syntax line pins the stable Dockerfile frontend, for the cache mount
# and COPY --chmod used below (BuildKit; the default builder since Docker 23).
#
# Build:  docker build --build-arg VERSION=$(git describe --tags --always) -t jwtgate .
# Run:    docker run --rm -p 8080:8080 -v $PWD/gateway.yaml:/etc/jwtgate/gateway.yaml:ro jwtgate

# ---- build stage -----------------------------------------------------------
# Same Go minor as go.mod, on Debian 12 like the runtime image. --platform
# makes `docker buildx --platform linux/arm64,...` cross-compile natively
# (pure Go, no emulation) instead of running the compiler under QEMU.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build

# Never download another toolchain: the build uses the image's Go or fails.
ENV GOTOOLCHAIN=local

WORKDIR /src

# Modules first, in their own layer: it is rebuilt only when go.mod or
# go.sum change, not on every source edit. `go mod verify` checks the
# downloaded modules against go.sum.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

# VERSION is declared here, after the module layer, so a new version
# string does not invalidate the module cache. TARGETOS/TARGETARCH are set
# by BuildKit per target platform (empty, i.e. the build host's, otherwise).
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# CGO_ENABLED=0: a static binary, needed on distroless/static (no libc).
# -trimpath: no local file system paths in the binary (reproducible builds).
# -s -w: drop the symbol table and DWARF (smaller; stack traces keep names).
# The build cache mount speeds up rebuilds without growing any layer.
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/jwtgate ./cmd/jwtgate

# ---- runtime stage ---------------------------------------------------------
# distroless/static: CA certificates (HTTPS JWKS/discovery), tzdata and
# /etc/passwd, and no shell or package manager to exploit. The :nonroot tag
# already runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
LABEL org.opencontainers.image.title="jwtgate" \
      org.opencontainers.image.description="JWT-validating reverse proxy with a structured audit trail" \
      org.opencontainers.image.version="${VERSION}"

# --chmod: readable and executable whatever the modes in the build context,
# and owned by root, so the non-root process can neither change the binary
# nor its default config.
COPY --from=build --chmod=0555 /out/jwtgate /jwtgate
COPY --chmod=0444 gateway.example.yaml /etc/jwtgate/gateway.yaml

# Numeric user: Kubernetes' runAsNonRoot can verify a uid, not a name.
USER 65532:65532

# 8080: public listener (server.address). 9901: admin (/healthz, /readyz,
# /metrics); the config must bind it to 0.0.0.0:9901 in a container, since
# its default 127.0.0.1:9901 is unreachable from outside the container.
EXPOSE 8080 9901

# Exec form: jwtgate is PID 1 and receives SIGTERM (graceful drain) and
# SIGHUP (config reload) directly. No HEALTHCHECK: the image has no shell
# or curl; point the orchestrator's probes at /healthz and /readyz.
ENTRYPOINT ["/jwtgate"]
CMD ["serve", "-c", "/etc/jwtgate/gateway.yaml"]
