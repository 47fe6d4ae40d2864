#!/usr/bin/env bash
# Install docker autobackup, the Docker CLI plugin, from this source tree.
#
#   ./install.sh                 build with the local Go toolchain and install for this user
#   ./install.sh --hooks         ... and show backup hints after docker compose up/down
#   ./install.sh --binary PATH   install a binary built elsewhere instead of building
#   sudo ./install.sh --system   install for every user of the machine
#   ./install.sh --uninstall     remove it again (and its CLI hooks)
#
# Where: ${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-autobackup, or with
# --system /usr/local/lib/docker/cli-plugins/docker-autobackup. The docker CLI
# looks in both; the per-user one wins.
#
# The binary must be static (CGO_ENABLED=0): the plugin copies itself into a
# scratch helper image to read and write volumes. The version it reports
# comes from metadata.json, embedded at build time; this script repeats none
# of it. Running the script again is harmless: an identical binary is left
# as it is, and hooks are enabled only once.
set -euo pipefail

PLUGIN=docker-autobackup
SYSTEM_DIR=/usr/local/lib/docker/cli-plugins
USER_DIR="${DOCKER_CONFIG:-${HOME:?HOME is not set}/.docker}/cli-plugins"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
	printf 'install.sh: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo pipefail/{/^set/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	cat <<'EOF'

Options:
  --binary PATH   install PATH (a static docker-autobackup build) instead of building
  --system        install into /usr/local/lib/docker/cli-plugins (needs root)
  --hooks         enable the docker CLI hooks (docker autobackup hooks enable)
  --uninstall     remove the plugin; disables its hooks first
  -h, --help      show this help
EOF
}

binary="" system=0 hooks=0 uninstall=0
while [[ $# -gt 0 ]]; do
	case $1 in
	--binary)
		[[ $# -ge 2 && -n $2 ]] || die "--binary needs a path"
		binary=$2
		shift
		;;
	--binary=*) binary=${1#--binary=} ;;
	--system) system=1 ;;
	--hooks) hooks=1 ;;
	--uninstall) uninstall=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		printf 'install.sh: error: unknown option %q; see ./install.sh --help\n' "$1" >&2
		exit 2
		;;
	esac
	shift
done
if ((uninstall)) && { [[ -n $binary ]] || ((hooks)); }; then
	die "--uninstall takes no --binary or --hooks"
fi

dir=$USER_DIR sudo_hint=""
if ((system)); then
	dir=$SYSTEM_DIR
	[[ $(id -u) -eq 0 ]] || sudo_hint=" (run with sudo?)"
fi
target=$dir/$PLUGIN

command -v docker >/dev/null 2>&1 ||
	die "the docker CLI is not on PATH. Install Docker (https://docs.docker.com/engine/install/) and run this again."

# tmp is removed on every exit path.
tmp=""
cleanup() { [[ -z $tmp ]] || rm -rf "$tmp"; }
trap cleanup EXIT

uninstall_plugin() {
	if [[ ! -e $target ]]; then
		log "not installed in $dir: nothing to do"
		return 0
	fi
	# Hooks point the docker CLI at this binary: take them out first, while
	# it can still edit config.json. A config.json it refuses to edit is
	# reported, not fatal: the plugin is removed either way.
	if [[ -x $target ]]; then
		"$target" autobackup hooks disable >&2 ||
			log "warning: could not disable the CLI hooks; remove \"autobackup\" from \"plugins\" in config.json by hand"
	fi
	rm -f "$target" || die "cannot remove $target$sudo_hint"
	log "removed $target"
}

# is_static BINARY: true when BINARY is a static Go build. Go's build info
# says it best; `file` is the fallback. Unknown counts as static, with a
# warning.
is_static() {
	local info
	if command -v go >/dev/null 2>&1 && info=$(go version -m "$1" 2>/dev/null); then
		grep -q 'CGO_ENABLED=0' <<<"$info"
		return
	fi
	if command -v file >/dev/null 2>&1; then
		file -L "$1" | grep -q 'statically linked'
		return
	fi
	log "warning: cannot check that $1 is static (no go, no file); it must be built with CGO_ENABLED=0"
}

build() {
	command -v go >/dev/null 2>&1 ||
		die "go is not on PATH: install Go (https://go.dev/dl/, the version in go.mod) to build from source, or pass --binary PATH"
	[[ -f $root/go.mod ]] || die "$root is not the docker autobackup source tree (no go.mod); pass --binary PATH"
	log "building $PLUGIN with $(go version | cut -d' ' -f3) (static)"
	# -trimpath: no local paths in the binary, and the same bytes for the
	# same source, so reinstalling an unchanged tree changes nothing.
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$tmp/$PLUGIN" ./cmd/docker-autobackup) ||
		die "go build failed (see above)"
	binary=$tmp/$PLUGIN
}

install_plugin() {
	tmp=$(mktemp -d)
	if [[ -z $binary ]]; then
		build
	else
		[[ -f $binary && -x $binary ]] || die "--binary $binary is not an executable file"
	fi
	is_static "$binary" || die "$binary is not statically linked; build it with CGO_ENABLED=0 (the helper container runs it FROM scratch)"

	if [[ ! -d $dir ]]; then
		mkdir -p "$dir" || die "cannot create $dir$sudo_hint"
	fi
	if [[ -f $target ]] && cmp -s "$binary" "$target"; then
		log "$target is up to date"
	else
		# Copy next to the target, then rename: a docker command running the
		# plugin right now keeps its old binary, never sees half a file.
		local staged=$dir/.$PLUGIN.install-$$
		install -m 0755 "$binary" "$staged" || die "cannot write to $dir$sudo_hint"
		mv -f "$staged" "$target" || {
			rm -f "$staged"
			die "cannot replace $target"
		}
		log "installed $target"
	fi

	# Check it the way a user runs it. The docker CLI reads DOCKER_CONFIG, so
	# a per-user install is checked where it was made.
	local version
	version=$(docker autobackup version 2>&1) ||
		die "the docker CLI does not run the plugin: $version
  Check that $dir is a plugin directory of this docker CLI (docker info, Client: Plugins)."
	log "ok: $version"
	if ((system)) && [[ -e $USER_DIR/$PLUGIN ]]; then
		log "warning: $USER_DIR/$PLUGIN exists and takes precedence over $target for this user; remove it (./install.sh --uninstall)"
	fi

	if ((hooks)); then
		docker autobackup hooks enable >&2 || die "could not enable the CLI hooks (see above); the plugin itself is installed"
	fi
}

if ((uninstall)); then
	uninstall_plugin
else
	install_plugin
fi
