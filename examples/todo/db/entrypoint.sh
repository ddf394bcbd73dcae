#!/bin/sh
# Starts PostgreSQL for the todo example: creates the cluster on first start,
# requires TLS with a client certificate from drawbridge's CA for every TCP
# connection, and keeps the todo role's password equal to the Docker secret
# (rotate the secret file and the role follows within a few seconds).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
CERTS=${TODO_DB_CERTS:-/certs}
PASSWORD_FILE=${TODO_DB_PASSWORD_FILE:-/run/secrets/db_password}
# Extra directories for the Unix socket (comma-separated), e.g. a volume a
# pg_dump backup container shares; /tmp is always one.
SOCKETS=/tmp${TODO_DB_SOCKET_DIRS:+,$TODO_DB_SOCKET_DIRS}
# PostgreSQL loads a key only if it is 0600 and its own (or 0640 and root's);
# the issuer runs as another non-root user and writes it 0640 with our group,
# so a private copy on the tmpfs is what the server reads.
KEY=/tmp/tls.key

log() { echo "todo-db: $*" >&2; }

# The certificate and key come from 'drawbridge cert issue --watch' on a
# shared volume; wait for them rather than starting without TLS.
i=0
while [ ! -s "$CERTS/tls.crt" ] || [ ! -s "$CERTS/tls.key" ] || [ ! -s "$CERTS/ca.crt" ]; do
  i=$((i + 1))
  [ "$i" -gt 120 ] && { log "no certificate in $CERTS after 120s"; exit 1; }
  sleep 1
done

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  log "initialising a new cluster in $PGDATA"
  initdb --username=postgres --auth-local=peer --auth-host=reject --encoding=UTF8 --no-instructions "$PGDATA" >/dev/null
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
  psql -h /tmp -U postgres -v ON_ERROR_STOP=1 -q <<SQL
CREATE ROLE todo LOGIN;
CREATE DATABASE todo OWNER postgres;
SQL
  psql -h /tmp -U postgres -d todo -v ON_ERROR_STOP=1 -q -f /usr/local/share/todo-db/schema.sql
  pg_ctl -D "$PGDATA" -w stop >/dev/null
fi

cat > "$PGDATA/pg_hba.conf" <<'HBA'
# Local administration over the Unix socket only.
local   all   postgres                 peer
# Every TCP connection must be TLS with a client certificate from
# drawbridge's CA, and the password. verify-ca, not verify-full: the
# certificate's CN is a SPIFFE ID (spiffe://drawbridge.internal/drawbridge),
# never the user name, and PostgreSQL 15 refuses map= with scram-sha-256.
hostssl todo  todo      all            scram-sha-256 clientcert=verify-ca
hostnossl all all       all            reject
HBA

sync_password() {
  # The password goes to psql on stdin, never on a command line or in the environment.
  pw=$(cat "$PASSWORD_FILE")
  printf "ALTER ROLE todo PASSWORD '%s';\n" "$(printf '%s' "$pw" | sed "s/'/''/g")" |
    psql -h /tmp -U postgres -d postgres -q -v ON_ERROR_STOP=1 >/dev/null
}

copy_key() {
  (umask 077 && cat "$CERTS/tls.key" > "$KEY.new") && mv "$KEY.new" "$KEY"
}
copy_key

postgres -c listen_addresses='*' -c unix_socket_directories="$SOCKETS" \
  -c ssl=on -c ssl_cert_file="$CERTS/tls.crt" -c ssl_key_file="$KEY" -c ssl_ca_file="$CERTS/ca.crt" \
  -c ssl_min_protocol_version=TLSv1.3 -c password_encryption=scram-sha-256 \
  -c log_connections=on -c log_destination=stderr &
pid=$!
trap 'kill -TERM $pid; wait $pid; exit 0' TERM INT

until pg_isready -h /tmp -U postgres -q; do
  kill -0 "$pid" 2>/dev/null || exit 1
  sleep 0.5
done
sync_password
last=$(cksum < "$PASSWORD_FILE")
certs=$(cat "$CERTS/tls.crt" "$CERTS/tls.key" "$CERTS/ca.crt" | cksum)
log "ready"
# Follow rotations: the password secret, and renewed certificates (reloaded without a restart).
while kill -0 "$pid" 2>/dev/null; do
  sleep 2
  now=$(cksum < "$PASSWORD_FILE" 2>/dev/null || echo "$last")
  if [ "$now" != "$last" ]; then
    sync_password && last=$now && log "database password rotated"
  fi
  c=$(cat "$CERTS/tls.crt" "$CERTS/tls.key" "$CERTS/ca.crt" 2>/dev/null | cksum || echo "$certs")
  if [ "$c" != "$certs" ]; then
    copy_key && pg_ctl -D "$PGDATA" reload >/dev/null && certs=$c && log "TLS certificate reloaded"
  fi
done
wait $pid
