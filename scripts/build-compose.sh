#!/usr/bin/env bash
# Build real Docker Compose v2 (the version pinned below) from the tools
# module tools/compose, for the end-to-end tests and `make install` on
# machines whose docker has no Compose v2 plugin. Prints the binary's path on
# stdout (and nothing else there), so callers can do:
#
#   compose=$(scripts/build-compose.sh)
#
# Output: ${AUTOBACKUP_CACHE:-$HOME/.cache/autobackup}/docker-compose
# Idempotent: returns at once when that binary already reports the pinned
# version. The first build takes a few minutes; later ones reuse Go's cache.
#
# Why a tools module: `go install github.com/docker/compose/v2/cmd@…` is
# refused (compose's go.mod has exclude directives), and compose's
# dependencies must not leak into our own go.mod.
set -euo pipefail

COMPOSE_VERSION=v2.40.3

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${AUTOBACKUP_CACHE:-$HOME/.cache/autobackup}
out=$cache/docker-compose

log() { printf 'build-compose: %s\n' "$*" >&2; }
die() { printf 'build-compose: error: %s\n' "$*" >&2; exit 1; }

if [[ -x $out ]] && [[ $("$out" version --short 2>/dev/null || true) == "${COMPOSE_VERSION#v}" ]]; then
	log "up to date: $out ($COMPOSE_VERSION)"
	printf '%s\n' "$out"
	exit 0
fi

command -v go >/dev/null || die "go not found: Go is needed to build Compose $COMPOSE_VERSION"
mkdir -p "$cache"
cd "$root/tools/compose"

# Pin the tool; a no-op when go.mod already has it at this version.
if [[ $(go list -m -f '{{.Version}}' github.com/docker/compose/v2 2>/dev/null || true) != "$COMPOSE_VERSION" ]]; then
	log "go get -tool github.com/docker/compose/v2/cmd@$COMPOSE_VERSION"
	go get -tool "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION" >&2
fi

log "building Compose $COMPOSE_VERSION into $out (the first build takes a few minutes)"
# Stamp the version the way compose's own Makefile does, so that
# `docker compose version` reports it instead of "dev".
go build -ldflags "-X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
	-o "$out.tmp.$$" github.com/docker/compose/v2/cmd >&2
mv -f "$out.tmp.$$" "$out"

got=$("$out" version --short 2>/dev/null || true)
[[ $got == "${COMPOSE_VERSION#v}" ]] || die "$out reports version '$got', want ${COMPOSE_VERSION#v}"
log "ok: $out ($COMPOSE_VERSION)"
printf '%s\n' "$out"
