#!/usr/bin/env bash
# Builds the PostgreSQL 15 image of the database benchmark (bench/pg.sh)
# locally, without a container registry: a debootstrap of Debian bookworm
# with Debian's postgresql-15 (pgbench and pg_amcheck ship with it), imported
# with `docker import`, then a small Dockerfile adding what `docker import
# --change` cannot (STOPSIGNAL on this engine) and the entrypoint.
#
#   scripts/build-pg-image.sh          # builds autobackup-bench/postgres:15 unless it exists
#   FORCE=1 scripts/build-pg-image.sh  # rebuilds it
#
# The entrypoint runs initdb on an empty PGDATA (trust authentication: a
# benchmark database, never expose it), then execs postgres as the postgres
# user. SIGINT is PostgreSQL's fast shutdown, which is what `docker stop`
# should send. Needs root, debootstrap (installed from apt if missing) and
# the Debian mirror of /etc/apt/sources.list.d/*.sources (or $MIRROR).
set -euo pipefail

IMAGE=${PG_IMAGE:-autobackup-bench/postgres:15}
BASE=${IMAGE%:*}-rootfs:${IMAGE##*:}

log() { printf 'build-pg-image: %s\n' "$*" >&2; }
die() { printf 'build-pg-image: error: %s\n' "$*" >&2; exit 1; }

if [[ -z ${FORCE:-} ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
	log "$IMAGE exists (FORCE=1 rebuilds it)"
	exit 0
fi
[[ $(id -u) == 0 ]] || die "needs root (debootstrap and chroot)"

if ! command -v debootstrap >/dev/null; then
	log "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } ||
		die "cannot install debootstrap"
fi

mirror=${MIRROR:-}
if [[ -z $mirror ]]; then
	# The first URIs line of a deb822 source that carries the main suite.
	mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [[ -z $mirror ]]; then
	mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[[ -n $mirror ]] || die "no Debian mirror found in /etc/apt (set MIRROR)"

work=$(mktemp -d "${TMPDIR:-/tmp}/autobackup-pg-image.XXXXXX")
rootfs=$work/rootfs
cleanup() {
	local rc=$?
	# Never leave a proc/dev mount behind in a directory we then delete.
	umount -l "$rootfs/proc" 2>/dev/null || true
	umount -l "$rootfs/dev/pts" 2>/dev/null || true
	docker image rm "$BASE" >/dev/null 2>&1 || true
	rm -rf --one-file-system "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

# No services started inside the chroot, and no default cluster: the
# entrypoint creates the one cluster in PGDATA.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
mkdir -p "$rootfs/etc/postgresql-common"
echo 'create_main_cluster = false' >"$rootfs/etc/postgresql-common/createcluster.conf"
# Keep documentation and translations out of the image (manual pages are
# removed after the install: update-alternatives needs them during it).
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF

log "installing postgresql-15 in the chroot"
mount -t proc proc "$rootfs/proc"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	postgresql-15 >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "apt-get install postgresql-15 failed"; }
chroot "$rootfs" apt-get clean
umount "$rootfs/proc"

# The JIT (LLVM, ~100 MB) is not used: the entrypoint sets jit = off.
rm -f "$rootfs"/usr/lib/postgresql/15/lib/llvmjit*.so "$rootfs"/usr/lib/*/libLLVM-*.so*
rm -rf "$rootfs"/usr/lib/postgresql/15/lib/bitcode "$rootfs"/usr/share/man/* "$rootfs"/usr/share/postgresql/15/man "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
rm -f "$rootfs/usr/sbin/policy-rc.d"

mkdir -p "$rootfs/var/lib/postgresql/data" "$rootfs/run/postgresql"
chroot "$rootfs" chown postgres:postgres /var/lib/postgresql/data /run/postgresql
chmod 0700 "$rootfs/var/lib/postgresql/data"

cat >"$rootfs/usr/local/bin/pg-entrypoint" <<'EOF'
#!/bin/bash
# initdb on an empty PGDATA, then exec postgres as the postgres user.
set -euo pipefail
PGDATA=${PGDATA:-/var/lib/postgresql/data}
mkdir -p "$PGDATA" /run/postgresql
if [[ $(id -u) == 0 ]]; then
	chown postgres:postgres "$PGDATA" /run/postgresql
	chmod 0700 "$PGDATA"
	as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
else
	as_pg=()
fi
if [[ ! -s $PGDATA/PG_VERSION ]]; then
	"${as_pg[@]}" initdb -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
	{
		echo "listen_addresses = '*'"
		echo "jit = off"
	} >>"$PGDATA/postgresql.conf"
	echo "host all all all trust" >>"$PGDATA/pg_hba.conf"
fi
if [[ $# -gt 0 && $1 != -* ]]; then
	exec "$@"
fi
exec "${as_pg[@]}" postgres -D "$PGDATA" "$@"
EOF
chmod 0755 "$rootfs/usr/local/bin/pg-entrypoint"

log "importing the root file system as $BASE"
tar -C "$rootfs" --numeric-owner -c . | docker import - "$BASE" >/dev/null

mkdir -p "$work/ctx"
cat >"$work/ctx/Dockerfile" <<EOF
FROM $BASE
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/pg-entrypoint"]
EOF
log "building $IMAGE"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$work/ctx" >/dev/null
log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}'))"
