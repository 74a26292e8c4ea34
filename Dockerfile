# syntax=docker/dockerfile:1
#
# Hallpass container image.
#
#   docker build -t hallpass .
#   docker run -d -p 8700:8700 -v hallpass-data:/data \
#     -e HALLPASS_ADMIN_USERNAME=admin -e HALLPASS_ADMIN_PASSWORD='change-me-please' \
#     -e HALLPASS_SERVER__PUBLIC_URL=https://login.example.org hallpass
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# ---------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------
# The exact compiler bench/link.order was written for: its names carry hashes of the compiler
# version, so another patch release would link without the order (bench/link-order.sh).
FROM rust:1.95.0-slim-bookworm AS builder

# make + perl: OpenSSL is compiled from source into the binary (openssl-sys "vendored",
# libpq's TLS), and its build needs both. libpq and SQLite are compiled in too (with the
# image's gcc), so no libssl-dev, libpq-dev or libsqlite3-dev.
# Versions are not pinned: build tools from the bookworm base image's archive.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make perl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The registry and target dir live in BuildKit cache mounts so rebuilds are
# incremental. A cache mount is not part of the image layer, so the binary is
# copied out of it within the same RUN. The release profile keeps the symbol table (see
# Cargo.toml); `install -s` leaves it out of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
    && install -s -m 0755 target/release/hallpass /usr/local/bin/hallpass

# ---------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: outbound TLS (the OpenID client trusts the host's store). Nothing else:
# the binary links only libc, libm and libgcc_s. No curl: the HEALTHCHECK below is
# `hallpass healthcheck`.
# Unpinned: bookworm base, security updates wanted on rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Fixed non-root uid/gid so volume ownership is predictable on the host.
RUN groupadd --system --gid 10001 hallpass \
    && useradd --system --no-log-init --uid 10001 --gid hallpass \
       --home-dir /data --shell /usr/sbin/nologin hallpass \
    && mkdir -p /data \
    && chown hallpass:hallpass /data

COPY --from=builder /usr/local/bin/hallpass /usr/local/bin/hallpass

# No MIMALLOC_PURGE_DELAY: password-hash buffers are mappings of their own, unmapped when
# freed (src/service/passwords.rs), so the image runs what bench/run.sh measures.
ENV HALLPASS_SERVER__BIND=0.0.0.0:8700 \
    HALLPASS_DATABASE__URL=sqlite:///data/hallpass.db \
    HALLPASS_SERVER__DATA_DIR=/data

# Numeric so runtimes can verify non-root without reading /etc/passwd
# (e.g. Kubernetes runAsNonRoot); 10001 is the hallpass user created above.
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8700

# `hallpass healthcheck` asks /readyz (the database answers) on the address in
# HALLPASS_SERVER__BIND (a wildcard address is reached on loopback): exit 0 or 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/hallpass", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/hallpass"]
CMD ["serve"]
