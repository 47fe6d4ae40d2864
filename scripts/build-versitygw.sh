#!/usr/bin/env bash
# Build versitygw (an S3-compatible server over a plain directory) from the
# tools module tools/versitygw, for the end-to-end tests of remote targets.
# Prints the binary's path on stdout (and nothing else there):
#
#   versitygw=$(scripts/build-versitygw.sh)
#
# Output: ${AUTOBACKUP_CACHE:-$HOME/.cache/autobackup}/versitygw
# Idempotent: returns at once when the binary was built from the pinned
# version (a stamp file beside it records which). The first build takes
# about a minute and a half; later ones reuse Go's cache.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${AUTOBACKUP_CACHE:-$HOME/.cache/autobackup}
out=$cache/versitygw
stamp=$out.version

log() { printf 'build-versitygw: %s\n' "$*" >&2; }
die() { printf 'build-versitygw: error: %s\n' "$*" >&2; exit 1; }

if [[ -x $out ]] && [[ $(cat "$stamp" 2>/dev/null || true) == "$VERSITYGW_VERSION" ]]; then
	log "up to date: $out ($VERSITYGW_VERSION)"
	printf '%s\n' "$out"
	exit 0
fi

command -v go >/dev/null || die "go not found: Go is needed to build versitygw $VERSITYGW_VERSION"
mkdir -p "$cache"
cd "$root/tools/versitygw"

if [[ $(go list -m -f '{{.Version}}' github.com/versity/versitygw 2>/dev/null || true) != "$VERSITYGW_VERSION" ]]; then
	log "go get -tool github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
	go get -tool "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
fi

log "building versitygw $VERSITYGW_VERSION into $out"
CGO_ENABLED=0 go build -o "$out.tmp.$$" github.com/versity/versitygw/cmd/versitygw >&2
mv -f "$out.tmp.$$" "$out"
printf '%s\n' "$VERSITYGW_VERSION" >"$stamp"
log "ok: $out ($VERSITYGW_VERSION)"
printf '%s\n' "$out"
