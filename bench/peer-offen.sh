#!/usr/bin/env bash
# Peer for the benchmark: a one-off backup with offen/docker-volume-backup
# v2.48.2 (https://github.com/offen/docker-volume-backup), called by
# bench/run.sh.
#
#   bench/peer-offen.sh VOLUME OUTDIR   # back up engine volume VOLUME into OUTDIR
#   bench/peer-offen.sh --check         # exit 0 only if the peer's image is here
#
# What offen does in such a run (its `backup` command without -foreground):
#   1. lists the running containers of the whole engine and stops, one after
#      the other, every one labelled docker-volume-backup.stop-during-backup=true
#      (the label is not scoped to a project or to the volume being backed up);
#   2. walks /backup inside its own container (here the volume, read-only at
#      /backup/data) and writes a tar compressed with zstd (klauspost/compress,
#      default level) to /tmp inside its container;
#   3. starts the stopped containers again, in list order: no dependency
#      order, and it does not wait for them to be running or healthy;
#   4. copies the archive from its /tmp to /archive (here OUTDIR), then
#      removes the temporary file.
# It talks to the engine through the mounted Docker socket (read-only bind
# mount; the API calls still work). The archive's member names are absolute
# (/backup/data/...).
#
# The image autobackup-peer/offen:v2.48.2 is not part of this repository: it
# was built by hand from the upstream source of tag v2.48.2 with
# `CGO_ENABLED=0 go build ./cmd/backup`, the binary placed at /usr/bin/backup
# in an image FROM autobackup-test/busybox:latest. No build script is
# committed because none of offen's code may be committed.
#
# Prints the archive's path on stdout; offen's own log goes to stderr.
set -euo pipefail

image=autobackup-peer/offen:v2.48.2

die() { printf 'peer-offen: %s\n' "$*" >&2; exit 1; }

check_image() {
	if ! docker image inspect "$image" >/dev/null 2>&1; then
		{
			printf 'peer-offen: image %s is absent (built by hand from the upstream source of offen/docker-volume-backup v2.48.2 with CGO_ENABLED=0 go build; not in this repository)\n' "$image"
			printf 'peer-offen: to make it: check out tag v2.48.2 of github.com/offen/docker-volume-backup, run CGO_ENABLED=0 go build -o backup ./cmd/backup,\n'
			printf 'peer-offen: and build an image FROM autobackup-test/busybox:latest with the binary at /usr/bin/backup and writable /tmp and /var/lock.\n'
			printf 'peer-offen: no build script is committed because none of offen'"'"'s code may be committed.\n'
		} >&2
		exit 1
	fi
}

if [[ ${1:-} == --check ]]; then
	check_image
	exit 0
fi

[[ $# -eq 2 ]] || die "usage: $0 VOLUME OUTDIR | $0 --check"
volume=$1
outdir=$2

check_image
docker volume inspect "$volume" >/dev/null 2>&1 || die "no engine volume named $volume"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# The engine's socket, bound into offen's container at its default location.
sock=/var/run/docker.sock
if [[ -n ${DOCKER_HOST:-} ]]; then
	[[ $DOCKER_HOST == unix://* ]] || die "DOCKER_HOST=$DOCKER_HOST: only a local unix socket is supported"
	sock=${DOCKER_HOST#unix://}
fi

# A fixed name without strftime verbs or templates, so the path is known here.
name="offen-$volume-$(date -u +%Y%m%dT%H%M%SZ)-$$.tar.zst"

# `backup` replaces the image's default command (`backup -foreground`, the
# cron daemon) with a single run. Its log goes to stderr.
docker run --rm --network none \
	-v "$sock:/var/run/docker.sock:ro" \
	-v "$volume:/backup/data:ro" \
	-v "$outdir:/archive" \
	-e BACKUP_COMPRESSION=zst \
	-e BACKUP_FILENAME="$name" \
	-e BACKUP_ARCHIVE=/archive \
	-e BACKUP_STOP_DURING_BACKUP_LABEL=true \
	"$image" backup >&2 || die "offen's backup of $volume failed (exit $?)"

[[ -s $outdir/$name ]] || die "offen reported success but $outdir/$name is missing or empty"
printf '%s\n' "$outdir/$name"
