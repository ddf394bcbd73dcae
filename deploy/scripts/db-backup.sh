#!/bin/sh
# The db-backup service: pg_dump of the todo database at start and then every
# TODO_BACKUP_EVERY seconds (default a day), keeping the newest TODO_BACKUP_KEEP
# (default 7) in /var/lib/postgresql (the db-backups volume). It runs in the
# database's image with no network at all: it reaches PostgreSQL over the Unix
# socket the db service shares on the db-socket volume, as the postgres user
# (peer authentication: same UID as the server).
set -eu
every=${TODO_BACKUP_EVERY:-86400}
keep=${TODO_BACKUP_KEEP:-7}
dir=/var/lib/postgresql
trap 'exit 0' TERM INT
# Swarm starts services in no order: wait (up to 5 minutes) for the server's socket before the first dump.
i=0
until pg_isready -h /var/run/postgresql -U postgres -q || [ "$i" -ge 150 ]; do
  i=$((i + 1))
  sleep 2
done
while :; do
  f="$dir/todo-$(date -u +%Y%m%dT%H%M%SZ).dump"
  if pg_dump -h /var/run/postgresql -U postgres -d todo --format=custom --file="$f.tmp" 2>"$dir/.last-error"; then
    mv "$f.tmp" "$f"
    echo "{\"msg\":\"db backup written\",\"path\":\"$f\",\"bytes\":$(wc -c < "$f")}"
  else
    rm -f "$f.tmp"
    echo "{\"msg\":\"db backup failed\",\"error\":\"$(tr -d '\"\n' < "$dir/.last-error")\"}"
  fi
  # shellcheck disable=SC2012 # our own file names: no spaces
  ls -1t "$dir"/todo-*.dump 2>/dev/null | tail -n "+$((keep + 1))" | while read -r old; do rm -f "$old"; done
  sleep "$every" &
  wait $! || true
done
