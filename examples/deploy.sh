#!/usr/bin/env bash
# deploy.sh — upgrade a Compose project with a safety net: back up, upgrade,
# and on failure put back both the data and the previous version.
#
# Usage, in the project directory, after changing the version (a new image
# tag in compose.yaml or .env, say):
#
#   ./deploy.sh [--no-pull] [-- EXTRA_UP_ARGS...]      e.g. -- --wait-timeout 120
#
# Steps:
#   1. Note which image each running service container runs now: that is the
#      previous version. Each gets a local tag,
#      autobackup-rollback/<project>-<service>:<backup id>, so that neither
#      `compose pull` (which moves tags like :latest) nor `image prune` can
#      take it away.
#   2. id=$(docker autobackup run --tag pre-upgrade): stdout is only the
#      backup ID, and the exit status is 0 only when the backup is complete
#      and every service is back and healthy. Nothing is upgraded otherwise.
#   3. docker compose pull && docker compose up -d --wait
#   4. If step 3 fails, restoring the data is not enough: the new version may
#      be what damaged it, and would damage it again. So:
#        a. docker compose stop                    the new version lets go of the data
#        b. docker autobackup restore "$id" --yes  the data as it was before step 3
#        c. docker compose up -d --wait with an override file that pins each
#           service that was running to its step-1 image, and with the
#           compose files the previous version was started with.
#
# Exit status: 0 upgraded; 1 the upgrade failed and the previous version runs
# again on the restored data; 3 the rollback failed too (look now); any
# other: the backup failed (nothing was changed) or bad usage (2).
#
# Limits: the rollback pins images only. If the new version also changed
# other settings in compose.yaml (environment, commands, new services), undo
# that change yourself — and in any case revert the version change before the
# next `docker compose up`, or it will start the broken version again. The
# override used for the rollback is kept and its path printed.
#
# Environment:
#   PULL=0               skip `docker compose pull` (no registry, locally built images)
#   AUTOBACKUP_TAG=NAME  tag of the safety backup (default pre-upgrade)
# The project is the one `docker compose` finds here (COMPOSE_FILE,
# COMPOSE_PROJECT_NAME and .env apply as usual).
set -euo pipefail

PULL=${PULL:-1}
AUTOBACKUP_TAG=${AUTOBACKUP_TAG:-pre-upgrade}

log() { printf 'deploy: %s\n' "$*" >&2; }
die() {
	printf 'deploy: error: %s\n' "$*" >&2
	exit 2
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--no-pull) PULL=0 ;;
	-h | --help)
		sed -n '2,/^set -euo pipefail/{/^set/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	--)
		shift
		break
		;;
	*) die "unknown argument '$1'; see $0 --help" ;;
	esac
	shift
done
up_args=("$@")

# 1. The previous version: service, image ID, project, compose files and
# directory of every running service container, from compose's own labels.
services=() images=() project="" config_files="" workdir=""
while IFS='|' read -r svc image proj files wd; do
	[[ -n $svc ]] || continue
	services+=("$svc")
	images+=("$image")
	project=$proj config_files=$files workdir=$wd
done < <(
	docker compose ps -q | xargs -r docker inspect --format \
		'{{index .Config.Labels "com.docker.compose.service"}}|{{.Image}}|{{index .Config.Labels "com.docker.compose.project"}}|{{index .Config.Labels "com.docker.compose.project.config_files"}}|{{index .Config.Labels "com.docker.compose.project.working_dir"}}'
)
if [[ ${#services[@]} -eq 0 ]]; then
	log "no service is running: a failed upgrade will restore the data but has no previous version to start"
fi

# 2. The safety backup. Under set -e a failed backup ends the script here,
# with the plugin's exit status, before anything is upgraded.
id=$(docker autobackup run --tag "$AUTOBACKUP_TAG")
log "backup $id taken (tag $AUTOBACKUP_TAG)"

rollback_refs=()
for i in "${!services[@]}"; do
	ref="autobackup-rollback/${project}-$(tr '[:upper:]' '[:lower:]' <<<"${services[$i]}"):${id}"
	docker image tag "${images[$i]}" "$ref"
	rollback_refs+=("$ref")
done

# 3. The upgrade.
upgrade() {
	if [[ $PULL != 0 ]]; then
		docker compose pull || return
	fi
	docker compose up -d --wait "${up_args[@]}"
}
if upgrade; then
	# The rollback tags are no longer needed; the images stay as long as
	# anything else uses them.
	if [[ ${#rollback_refs[@]} -gt 0 ]]; then
		docker image rm "${rollback_refs[@]}" >/dev/null || true
	fi
	log "upgraded; the pre-upgrade backup is $id"
	exit 0
fi

# 4. The rollback.
log "upgrade FAILED: stopping the new version, restoring backup $id, starting the previous version"
docker compose stop || log "warning: docker compose stop failed; the restore stops what still runs"

if ! docker autobackup restore "$id" --yes; then
	log "restore of $id FAILED; the data may be damaged. Services stay stopped. Try again: docker autobackup restore $id --yes"
	exit 3
fi

if [[ ${#services[@]} -eq 0 ]]; then
	log "data restored from $id; nothing was running before, so nothing is started"
	exit 1
fi

override=$(mktemp "${TMPDIR:-/tmp}/deploy-rollback-${project}-XXXXXX.yaml")
{
	echo "# Written by deploy.sh: pins the images that ran before the failed upgrade."
	echo "services:"
	for i in "${!services[@]}"; do
		printf '  %s:\n    image: %s\n    pull_policy: never\n' "${services[$i]}" "${rollback_refs[$i]}"
	done
} >"$override"

files=()
IFS=',' read -r -a listed <<<"$config_files"
for f in "${listed[@]}"; do
	files+=(-f "$f")
done
files+=(-f "$override")

if ! docker compose -p "$project" --project-directory "$workdir" "${files[@]}" up -d --wait "${up_args[@]}" "${services[@]}"; then
	log "the previous version did not come back healthy either. Look now: docker compose ps; docker compose logs"
	log "rollback override: $override"
	exit 3
fi
log "rolled back: the previous version runs on the data of backup $id"
log "revert the version change before the next 'docker compose up' (rollback override: $override)"
exit 1
