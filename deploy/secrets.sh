#!/usr/bin/env bash
# deploy/secrets.sh: generate the stack's secrets as files in deploy/secrets/ (Compose file secrets), or create them
# as Docker swarm secrets. Never prints a secret. An existing file is kept unless named with --rotate.
#
#   deploy/secrets.sh                          # create the missing files in deploy/secrets/
#   deploy/secrets.sh --rotate db_password     # a new value for one secret, rewritten IN PLACE (see below)
#   deploy/secrets.sh --swarm [--version v2]   # docker secret create NAME_v2 from the files (swarm: versioned names)
#   SECRETS_DIR=/path deploy/secrets.sh        # another directory
#
# Modes. Compose mounts a file secret as a read-only bind mount of the host file: the owner and mode inside the
# container are the host's (Compose ignores uid/gid/mode for file secrets). The containers run as different non-root
# users (65532 drawbridge, 10001 api, 10003 db, 10004 prometheus), so a 0600 file owned by the host user would be
# unreadable in them. The files are therefore 0444, and the directory holding them is 0700: other users on the host
# cannot reach them, every container can read the secrets it mounts (and only those).
#
# In place. A running container sees an in-place rewrite of the host file at once (drawbridge re-reads its secrets
# every 5s; the db follows db_password within 2s), but a file replaced by rename only after a restart, since the bind
# mount holds the old inode. So --rotate truncates and rewrites the same file.
set -euo pipefail
cd "$(dirname "$0")"
dir=${SECRETS_DIR:-secrets}

# name and byte length of the random value (base64url, no padding)
secrets=(
  "ca_passphrase 48"          # seals the CA's keys at rest and the backup archives; >= 16 bytes
  "sidecar_passphrase 48"     # seals the sidecars' enrolled keys (tmpfs)
  "db_password 32"            # the todo role's password; the db and the api read it
  "enroll_token_edge 48"      # bootstrap token of the swarm edge replicas (stack.yaml); >= 32 bytes
  "enroll_token_api 48"       # bootstrap token of the api's sidecar
  "enroll_token_web 48"       # bootstrap token of the web's sidecar
  "drawbridge_admin_token 32" # /metrics and /status on the edge's admin port; Prometheus sends it
)

random() { head -c "$1" /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '='; }
known() { local s; for s in "${secrets[@]}"; do [ "${s%% *}" = "$1" ] && return 0; done; return 1; }

write() { # name length: (re)write the file in place, keeping its inode
  local f="$dir/$1"
  if [ -e "$f" ]; then chmod 0644 "$f"; fi
  (umask 0333; random "$2" > "$f.new.$$" ; cat "$f.new.$$" > "$f"; rm -f "$f.new.$$")
  chmod 0444 "$f"
}

mode=create rotate=() version=v1
while [ $# -gt 0 ]; do
  case $1 in
    --rotate) rotate+=("$2"); mode=rotate; shift 2 ;;
    --swarm) mode=swarm; shift ;;
    --version) version=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "secrets.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$dir"
chmod 0700 "$dir"
case $mode in
  create)
    for s in "${secrets[@]}"; do
      name=${s%% *}
      if [ -s "$dir/$name" ]; then continue; fi
      write "$name" "${s##* }"
      echo "created $dir/$name"
    done ;;
  rotate)
    for name in "${rotate[@]}"; do
      known "$name" || { echo "secrets.sh: no secret named $name" >&2; exit 2; }
      for s in "${secrets[@]}"; do [ "${s%% *}" = "$name" ] && write "$name" "${s##* }"; done
      echo "rotated $dir/$name in place"
    done ;;
  swarm)
    for s in "${secrets[@]}"; do
      name=${s%% *}
      [ -s "$dir/$name" ] || { echo "secrets.sh: $dir/$name is missing: run deploy/secrets.sh first" >&2; exit 1; }
      if docker secret inspect "${name}_$version" >/dev/null 2>&1; then continue; fi
      docker secret create --label drawbridge.secret="$name" "${name}_$version" "$dir/$name" >/dev/null
      echo "created swarm secret ${name}_$version"
    done ;;
esac
