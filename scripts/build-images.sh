#!/usr/bin/env bash
# Build the images the example and the end-to-end tests use, locally, with no
# registry involved:
#
#   autobackup-test/busybox:latest    FROM scratch + the host's static busybox
#   autobackup-example/shopd:latest   FROM scratch + examples/shop/shopd (CGO_ENABLED=0)
#
# Usage: scripts/build-images.sh [all|busybox|shopd]...   (default: all)
#
# Idempotent: unchanged inputs hit the classic builder's cache. Needs a
# running Docker engine, Go (for shopd) and a static busybox; when busybox is
# missing and we are root, installs Debian's busybox-static with apt-get.
#
# Environment:
#   BUSYBOX   path of a static busybox binary (default: /bin/busybox or /usr/bin/busybox)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

BUSYBOX_IMAGE=autobackup-test/busybox:latest
SHOPD_IMAGE=autobackup-example/shopd:latest

log() { printf 'build-images: %s\n' "$*" >&2; }
die() { printf 'build-images: error: %s\n' "$*" >&2; exit 1; }

# The classic builder: no buildx plugin needed, works with Engine 20.10. Its
# output (and the CLI's deprecation notice for it) is shown only on failure.
docker_build() {
	local out
	if ! out=$(DOCKER_BUILDKIT=0 docker build --quiet "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		return 1
	fi
}

find_busybox() {
	local c
	for c in "${BUSYBOX:-}" /bin/busybox /usr/bin/busybox; do
		if [[ -n $c && -x $c ]]; then
			printf '%s\n' "$c"
			return 0
		fi
	done
	return 1
}

ensure_busybox() {
	if find_busybox >/dev/null; then
		return 0
	fi
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		die "no busybox found (looked at \$BUSYBOX, /bin/busybox, /usr/bin/busybox).
  Install a static one, e.g.: sudo apt-get install busybox-static
  or point BUSYBOX at a statically linked busybox binary."
	fi
	log "busybox missing: installing Debian's busybox-static"
	export DEBIAN_FRONTEND=noninteractive
	# Try without refreshing the package lists first; fresh images often have none.
	if ! apt-get install -y --no-install-recommends busybox-static >/dev/null 2>&1; then
		apt-get update -qq >/dev/null
		apt-get install -y --no-install-recommends busybox-static >/dev/null
	fi
	find_busybox >/dev/null || die "busybox-static installed but no busybox binary found"
}

build_busybox() {
	ensure_busybox
	local bb ctx
	bb=$(find_busybox)
	ctx=$(mktemp -d)
	# shellcheck disable=SC2064 # expand $ctx now
	trap "rm -rf '$ctx'" RETURN
	cp "$root/images/busybox/Dockerfile" "$ctx/"
	cp "$bb" "$ctx/busybox"
	log "building $BUSYBOX_IMAGE from $bb"
	if ! docker_build -t "$BUSYBOX_IMAGE" "$ctx"; then
		die "building $BUSYBOX_IMAGE failed. $bb must be statically linked
  (Debian: apt-get install busybox-static, which replaces the dynamic 'busybox' package)."
	fi
	docker run --rm --network none "$BUSYBOX_IMAGE" true ||
		die "$BUSYBOX_IMAGE was built but cannot run 'true'"
	log "ok: $BUSYBOX_IMAGE"
}

build_shopd() {
	command -v go >/dev/null || die "go not found: Go is needed to compile examples/shop/shopd"
	local bin=$root/images/shopd/shopd
	log "compiling examples/shop/shopd (static)"
	# -trimpath keeps the binary byte-identical across checkouts, so the
	# image build below hits the cache when nothing changed.
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin.tmp" ./examples/shop/shopd)
	mv -f "$bin.tmp" "$bin"
	log "building $SHOPD_IMAGE"
	docker_build -t "$SHOPD_IMAGE" "$root/images/shopd" || die "building $SHOPD_IMAGE failed"
	docker run --rm --network none "$SHOPD_IMAGE" help >/dev/null ||
		die "$SHOPD_IMAGE was built but 'shopd help' does not run"
	log "ok: $SHOPD_IMAGE"
}

docker info >/dev/null 2>&1 || die "no Docker engine answers 'docker info'"

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(all)
for t in "${targets[@]}"; do
	case $t in
	all) build_busybox; build_shopd ;;
	busybox) build_busybox ;;
	shopd) build_shopd ;;
	*) die "unknown target '$t' (want all, busybox or shopd)" ;;
	esac
done
