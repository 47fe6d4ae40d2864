#!/usr/bin/env bash
# Build mailpit (the SMTP server with an HTTP API the end-to-end tests send
# notification e-mails to) from the tools module tools/mailpit. Prints the
# binary's path on stdout (and nothing else there), so callers can do:
#
#   mailpit=$(scripts/build-mailpit.sh)
#
# Output: ${AUTOBACKUP_CACHE:-$HOME/.cache/autobackup}/mailpit
# Idempotent: returns at once when that binary already reports the pinned
# version. The first build takes a few minutes; later ones reuse Go's cache.
#
# Why a tools module: mailpit's dependencies must not leak into our own
# go.mod.
set -euo pipefail

MAILPIT_VERSION=v1.33.1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${AUTOBACKUP_CACHE:-$HOME/.cache/autobackup}
out=$cache/mailpit

log() { printf 'build-mailpit: %s\n' "$*" >&2; }
die() { printf 'build-mailpit: error: %s\n' "$*" >&2; exit 1; }

if [[ -x $out ]] && [[ $("$out" version --no-release-check 2>/dev/null || true) == *"$MAILPIT_VERSION"* ]]; then
	log "up to date: $out ($MAILPIT_VERSION)"
	printf '%s\n' "$out"
	exit 0
fi

command -v go >/dev/null || die "go not found: Go is needed to build mailpit $MAILPIT_VERSION"
mkdir -p "$cache"
cd "$root/tools/mailpit"

if [[ $(go list -m -f '{{.Version}}' github.com/axllent/mailpit 2>/dev/null || true) != "$MAILPIT_VERSION" ]]; then
	log "go get -tool github.com/axllent/mailpit@$MAILPIT_VERSION"
	go get -tool "github.com/axllent/mailpit@$MAILPIT_VERSION" >&2
fi

log "building mailpit $MAILPIT_VERSION into $out (the first build takes a few minutes)"
# Stamp the version the way mailpit's release build does, so that
# `mailpit version` reports it.
CGO_ENABLED=0 go build -ldflags "-X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION" \
	-o "$out.tmp.$$" github.com/axllent/mailpit >&2
mv -f "$out.tmp.$$" "$out"

got=$("$out" version --no-release-check 2>/dev/null || true)
[[ $got == *"$MAILPIT_VERSION"* ]] || die "$out reports version '$got', want $MAILPIT_VERSION"
log "ok: $out ($MAILPIT_VERSION)"
printf '%s\n' "$out"
