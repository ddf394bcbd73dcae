#!/bin/sh
# drawbridge-dev: entrypoint of the Dockerfile's dev target (busybox sh or any POSIX sh).
#
# Polls the working directory (a bind-mounted checkout) for changes to Go sources, go.mod and go.sum; on a change it
# rebuilds DRAWBRIDGE_DEV_PKG and restarts the binary with this script's arguments. A failed build keeps the last good
# process running. SIGTERM or SIGINT stops the process and exits. Polling, not inotify: bind mounts from Docker Desktop
# and some file systems deliver no inotify events.
#
# Env: DRAWBRIDGE_DEV_PKG (./cmd/drawbridge), DRAWBRIDGE_DEV_INTERVAL (seconds between polls, 1),
#      DRAWBRIDGE_DEV_STOP_TIMEOUT (seconds to wait after SIGTERM before SIGKILL, 10).
set -u

pkg=${DRAWBRIDGE_DEV_PKG:-./cmd/drawbridge}
interval=${DRAWBRIDGE_DEV_INTERVAL:-1}
stop_timeout=${DRAWBRIDGE_DEV_STOP_TIMEOUT:-10}
bindir=$(mktemp -d)
child=

log() { echo "drawbridge-dev: $*" >&2; }

# fingerprint changes whenever a watched file is added, removed, resized or modified.
fingerprint() {
	find . -name .git -prune -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -exec stat -c '%n %s %Y' {} + \
		2>/dev/null | sort | md5sum
}

stop() {
	[ -n "$child" ] || return 0
	kill -TERM "$child" 2>/dev/null
	(sleep "$stop_timeout" && kill -KILL "$child" 2>/dev/null) &
	killer=$!
	wait "$child" 2>/dev/null
	kill "$killer" 2>/dev/null
	child=
}

trap 'stop; rm -rf "$bindir"; exit 0' TERM INT

last=
while :; do
	now=$(fingerprint)
	if [ "$now" != "$last" ]; then
		last=$now
		log "building $pkg"
		if go build -o "$bindir/next" "$pkg"; then
			stop
			mv "$bindir/next" "$bindir/drawbridge"
			log "starting: drawbridge $*"
			"$bindir/drawbridge" "$@" &
			child=$!
		else
			log "build failed; keeping the previous process"
		fi
	fi
	# Sleep in the background and wait for it, so a signal is handled at once.
	sleep "$interval" &
	wait $!
done
