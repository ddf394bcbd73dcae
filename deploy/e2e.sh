#!/usr/bin/env bash
# deploy/e2e.sh: the end-to-end test of deploy/compose.yaml and deploy/stack.yaml on a real Docker engine.
#
# Builds every image, brings the stack up with Compose v2 (`up -d --wait`), and proves what the stack claims: the app
# works through the edge over HTTPS, and the React front end does in Chromium (deploy/browsertest: add, toggle,
# delete, the banner while the api is stopped, recovery); the tiers are isolated (probes from inside each container's network namespace);
# plaintext to every internal listener is refused; the database sees only TLS; a stopped api gives fast 503s with the
# breaker open and recovers by itself; a killed edge is restarted and healthy again; the database password and the CA
# passphrase rotate without a rebuild; backup, wipe, restore brings the todos and the same CA back; every container
# runs non-root, read-only, without capabilities and with limits. Then `down -v`; and the development stack
# (compose.dev.yaml) with hot reload proven in Chromium through the edge (an edited component and a new API route,
# each seen within 10 s). (The swarm stack needs several nodes: deploy/multinode.sh.)
#
# Every wait is bounded, and everything it made is removed on exit (trap), also on failure. It uses a project name,
# secrets directory and port of its own, so it does not touch a stack you run from deploy/.
#
#   deploy/e2e.sh                     # what .ci/e2e runs
#   E2E_COLD=1 deploy/e2e.sh          # also time a cold build of every image (--no-cache)
#   E2E_KEEP=1 deploy/e2e.sh          # leave the compose stack up on failure, to look at it
#   E2E_DEV=0 deploy/e2e.sh           # skip the development phase (hot reload in Chromium with compose.dev.yaml)
#
# Needs: docker (engine + CLI), the Compose v2 plugin (deploy/images/compose-v2.sh), curl, openssl, Go and Debian's
# chromium (deploy/browsertest), and the base images (deploy/images/bootstrap.sh). Runs as root (it kills the edge's process by PID, as a crash would).
set -euo pipefail
cd "$(dirname "$0")"
deploy=$PWD

project=${E2E_PROJECT:-drawbridge-e2e}
port=${E2E_HTTPS_PORT:-18443}
swarm_port=${E2E_SWARM_HTTPS_PORT:-18444}
work=$(mktemp -d /tmp/drawbridge-e2e.XXXXXX)
chmod 0755 "$work"
export SECRETS_DIR=$work/secrets EDGE_HTTPS_PORT=$port COMPOSE_PROJECT_NAME=$project
export DRAWBRIDGE_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo none)
# Image tags (compose.yaml's DRAWBRIDGE_TAG and TODO_TAG): another tag keeps a run off the images a stack here uses.
export DRAWBRIDGE_TAG=${DRAWBRIDGE_TAG:-latest} TODO_TAG=${TODO_TAG:-latest}
db_image=todo-db:$TODO_TAG gw_image=drawbridge:$DRAWBRIDGE_TAG
export BUILDKIT_PROGRESS=quiet
dc() { docker compose -f "$deploy/compose.yaml" "$@"; }
url=https://localhost:$port
cacert=$work/ca.crt

start=$SECONDS
failed=0
figures=()
log() { printf '[%4ds] %s\n' "$((SECONDS - start))" "$*"; }
fail() { log "FAIL: $*"; failed=1; exit 1; }
pass() { log "ok: $*"; }
figure() { figures+=("$1"); log "figure: $1"; }
ms() { date +%s%3N; }
# quiet COMMAND...: run it with its output in a log, shown only when it fails.
quiet() { "$@" >"$work/cmd.log" 2>&1 || { tail -30 "$work/cmd.log"; fail "$*"; }; }

swarm_joined=0
cleanup() {
  code=$?
  set +e
  if [ "$code" != 0 ] || [ "$failed" != 0 ]; then
    log "failed; container states and recent logs follow"
    dc ps -a 2>/dev/null
    for s in $(dc ps -a --services 2>/dev/null); do echo "--- $s"; dc logs --no-color --tail 8 "$s" 2>/dev/null | cut -c1-400; done
  fi
  if [ "${E2E_KEEP:-0}" = 1 ] && [ "$code" != 0 ]; then
    log "E2E_KEEP=1: leaving project $project up; remove it with: docker compose -p $project -f deploy/compose.yaml down -v"
  else
    dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1
  fi
  if [ "$swarm_joined" = 1 ]; then
    docker stack rm "$project" >/dev/null 2>&1
    for _ in $(seq 1 30); do [ -z "$(docker ps -q --filter label=com.docker.stack.namespace=$project)" ] && break; sleep 1; done
    docker swarm leave --force >/dev/null 2>&1
  fi
  docker volume ls -q --filter "label=com.docker.stack.namespace=$project" | xargs -r docker volume rm >/dev/null 2>&1
  rm -rf "$work"
  if [ "$code" = 0 ]; then log "e2e: PASS in $((SECONDS - start)) s"; else log "e2e: FAIL (exit $code) after $((SECONDS - start)) s"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION SECONDS COMMAND...: run COMMAND every 0.5 s until it succeeds, at most SECONDS.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${limit}s"
    sleep 0.5
  done
}

container() { dc ps -q "$1"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(container "$1")"; }
healthy() { [ "$(health "$1")" = healthy ]; }
https() { curl -sS --max-time 10 --cacert "$cacert" "$@"; }
# status PATH [curl args]: the HTTP status of a request through the edge.
status() { local p=$1; shift; curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$cacert" "$@" "$url$p"; }

# probe CONTAINER HOST PORT: "open" when a TCP connection from inside CONTAINER's network namespace succeeds within
# 3 s, "closed" otherwise (refused, unreachable, timed out or no such name). The probe is a throwaway container of
# the db image (bash's /dev/tcp) that joins that namespace; it is as hardened as the services.
probe() {
  docker run --rm --network "container:$1" --user 10003:10003 --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true --entrypoint bash "$db_image" \
    -c "timeout 3 bash -c 'exec 3<>/dev/tcp/$2/$3' 2>/dev/null && echo open || echo closed"
}
# psql_probe CONTAINER CONNINFO: psql's answer from inside CONTAINER's namespace (stderr included), never a password.
psql_probe() {
  docker run --rm --network "container:$1" --user 10003:10003 --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true --tmpfs /tmp -e PGCONNECT_TIMEOUT=3 --entrypoint psql "$db_image" \
    "$2" -c 'select 1' 2>&1 || true
}
# metrics: the edge's /metrics, read from inside its namespace with the admin token from the secret file (sent in a
# header from a file, never on a command line).
metrics() {
  docker run --rm --network "container:$(container edge)" --user 10003:10003 --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true -v "$SECRETS_DIR/drawbridge_admin_token:/run/secrets/token:ro" \
    --entrypoint bash "$db_image" -c '
      exec 3<>/dev/tcp/127.0.0.1/9090
      printf "GET /metrics HTTP/1.0\r\nHost: drawbridge\r\nAuthorization: Bearer %s\r\n\r\n" "$(cat /run/secrets/token)" >&3
      cat <&3'
}
ip_on() { docker inspect -f "{{(index .NetworkSettings.Networks \"${project}_$2\").IPAddress}}" "$(container "$1")"; }

command -v curl >/dev/null || fail "curl is missing"
command -v openssl >/dev/null || fail "openssl is missing"
docker compose version >/dev/null 2>&1 || fail "the Compose v2 plugin is missing: deploy/images/compose-v2.sh"
# A leftover of an interrupted run.
dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true

./secrets.sh >/dev/null

if [ "${E2E_COMPOSE:-1}" = 1 ]; then
## Images ----------------------------------------------------------------------------------------------------------
services_built="edge web api db prometheus"
if [ "${E2E_COLD:-0}" = 1 ]; then
  for s in $services_built; do
    t0=$(ms); quiet dc build -q --no-cache "$s"; figure "cold build $s: $(( ($(ms) - t0) / 1000 )) s"
  done
fi
# The gateway first: the web image copies its binary (the web Dockerfile's DRAWBRIDGE_IMAGE).
t0=$(ms); quiet dc build -q edge; quiet dc build -q; figure "build of every image (cache as found): $(( ($(ms) - t0) / 1000 )) s"
t0=$(ms); quiet dc build -q; figure "cached rebuild of every image: $(( ($(ms) - t0) / 1000 )) s"
for i in "$gw_image" todo-web:$TODO_TAG todo-api:$TODO_TAG "$db_image" todo-prometheus:$TODO_TAG; do
  figure "image $i: $(docker image inspect -f '{{.Size}}' "$i" | awk '{printf "%.1f MB", $1/1e6}')"
done

## Up ----------------------------------------------------------------------------------------------------------------
t0=$(ms)
dc up -d --wait --wait-timeout 240 >"$work/up.log" 2>&1 || { tail -20 "$work/up.log"; fail "compose up --wait"; }
up_ms=$(( $(ms) - t0 ))
figure "up -d --wait to every service healthy: $(awk -v m="$up_ms" 'BEGIN{printf "%.1f s", m/1000}')"
for s in $(dc ps --services); do [ "$(health "$s")" = healthy ] || fail "$s is $(health "$s")"; done
pass "all $(dc ps --services | wc -l) services healthy"

docker cp "$(container trust):/trust/ca.crt" "$cacert" >/dev/null
root_before=$(openssl x509 -in "$cacert" -noout -fingerprint -sha256 | cut -d= -f2)
log "CA root fingerprint (sha256): $root_before"

## The app through the edge over HTTPS -----------------------------------------------------------------------------
https "$url/" | grep -q '<title>Todo</title>' || fail "the front end over HTTPS"
created=$(https -X POST -H 'Content-Type: application/json' -d '{"title":"e2e: buy milk"}' "$url/api/todos")
id=$(printf '%s' "$created" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
[ -n "$id" ] || fail "create a todo: $created"
https "$url/api/todos" | grep -q '"e2e: buy milk"' || fail "list the todo"
[ "$(status "/api/todos/$id" -X DELETE)" = 204 ] || fail "delete the todo"
https "$url/api/todos" | grep -q '"e2e: buy milk"' && fail "the deleted todo is still listed"
pass "create, list and delete a todo through the edge over HTTPS (curl --cacert with the CA bundle)"
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/" 2>/dev/null)" = 000 ] || fail "curl without the CA accepted the edge"
pass "the edge's certificate chains to the internal CA only"

## The React app in Chromium through the edge --------------------------------------------------------------------
# deploy/browsertest drives Debian's Chromium: add, toggle and delete a todo, then stop the api, see the page's banner,
# start it and see the page recover by itself. The test binary is built once; the dev phase below reuses it.
(cd .. && go test -c -o "$work/browsertest.test" ./deploy/browsertest) >"$work/cmd.log" 2>&1 || { tail -30 "$work/cmd.log"; fail "building deploy/browsertest"; }
browser() { # browser TEST [VAR=VALUE...]: run one browser test against the stack at $url
  local test=$1; shift
  env E2E_URL="$url" E2E_CACERT="$cacert" E2E_COMPOSE="docker compose -p $project -f $deploy/compose.yaml" "$@" \
    "$work/browsertest.test" -test.run "^$test\$" -test.v -test.count=1 -test.timeout 5m >"$work/browser.log" 2>&1 ||
    { tail -40 "$work/browser.log"; fail "$test in Chromium"; }
  grep -E '^\s+browser_test.go:[0-9]+: ' "$work/browser.log" | sed 's/^ */  /' || true
}
t0=$(ms)
browser TestTodoApp
figure "React app in Chromium (add, toggle, delete, api stopped: banner, started: recovered): $(( ($(ms) - t0) / 1000 )) s"
pass "Chromium through the edge: the React app adds, toggles and deletes; shows the banner while the api is down and recovers"

## Isolation -----------------------------------------------------------------------------------------------------
web=$(container web) api=$(container api-sidecar) edge=$(container edge) prom=$(container prometheus)
api_ip=$(ip_on api-sidecar backend) db_ip=$(ip_on db data) web_ip=$(ip_on web frontend)
expect() { # expect open|closed CONTAINER-LABEL CONTAINER HOST PORT
  local got; got=$(probe "$3" "$4" "$5")
  [ "$got" = "$1" ] || fail "from $2 to $4:$5: $got, want $1"
  log "  $2 -> $4:$5 $got"
}
expect closed web "$web" api 8443
expect closed web "$web" "$api_ip" 8443
expect closed web "$web" db 5432
expect closed web "$web" "$db_ip" 5432
expect open   web "$web" edge 8444           # enrollment: the one way from web to the edge besides its own traffic
expect closed api "$api" db 5432
expect closed api "$api" "$db_ip" 5432
expect closed api "$api" "$web_ip" 8443
expect open   api "$api" edge 5432           # the hop to the database
expect closed prometheus "$prom" "$db_ip" 5432
expect closed prometheus "$prom" "$api_ip" 8443
expect open   prometheus "$prom" drawbridge 9090
pass "web reaches neither api nor db; api reaches db only through the edge; monitoring reaches only the admin port"
prom_up() {
  dc exec -T prometheus curl -sf 'http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22drawbridge%22%7D' |
    grep -q '"value":\[[0-9.]*,"1"\]'
}
wait_for "Prometheus scrapes the edge's /metrics with the token (up == 1)" 60 prom_up
pass "Prometheus scrapes the edge's admin port over the monitoring network with the admin token"

## Plaintext is refused on every internal listener -------------------------------------------------------------------
# HTTP in plain text to the sidecars' mutual TLS listeners and the edge's enrollment listener.
for target in "web:8443 web" "api:8443 api-sidecar" "edge:8444 enrollment"; do
  set -- $target
  out=$(docker run --rm --network "container:$edge" --read-only --cap-drop ALL --security-opt no-new-privileges:true \
    "$gw_image" healthcheck --timeout 3s "http://$1/" 2>&1 || true)
  case $out in *"400 Bad Request"*|*"malformed HTTP"*|*"connection reset"*|*EOF*) ;; *) fail "plain HTTP to $1: $out";; esac
  log "  plain HTTP to $2 ($1): refused ($out)"
done
# The api listens on loopback only; the web tier has no plaintext port at all.
expect closed edge "$edge" "$web_ip" 8080
expect closed edge "$edge" "$api_ip" 8000
# PostgreSQL without TLS, to the edge's db listener and to the database itself.
out=$(psql_probe "$api" "host=edge port=5432 dbname=todo user=todo sslmode=disable")
case $out in *"TLS"*|*"SSL"*|*"encryption"*) log "  plaintext PostgreSQL to edge:5432: refused ($(echo "$out" | head -1))";; *) fail "plaintext to edge:5432: $out";; esac
out=$(psql_probe "$edge" "host=db port=5432 dbname=todo user=todo sslmode=disable")
case $out in *"no encryption"*|*"pg_hba.conf"*) log "  plaintext PostgreSQL to db:5432: refused ($(echo "$out" | head -1))";; *) fail "plaintext to db:5432: $out";; esac
out=$(psql_probe "$edge" "host=db port=5432 dbname=todo user=todo sslmode=require")
case $out in *"certificate"*) log "  TLS without a client certificate to db:5432: refused ($(echo "$out" | head -1))";; *) fail "TLS without a client certificate to db:5432: $out";; esac
out=$(psql_probe "$api" "host=edge port=5432 dbname=todo user=todo sslmode=require channel_binding=disable")
case $out in *"certificate"*|*"SSL"*|*"closed"*|*"terminated"*) log "  TLS without a client certificate to edge:5432: refused ($(echo "$out" | head -1))";; *) fail "TLS without a client certificate to edge:5432: $out";; esac
pass "plaintext (and TLS without a client certificate) is refused by every internal listener"

## The database sees only TLS ------------------------------------------------------------------------------------
https "$url/api/todos" >/dev/null
q="select count(*) filter (where s.ssl), count(*) filter (where not s.ssl), string_agg(distinct s.version, ','), string_agg(distinct s.client_dn, ',')
   from pg_stat_activity a join pg_stat_ssl s using (pid) where a.client_addr is not null"
row=$(dc exec -T db psql -h /tmp -U postgres -d todo -Atc "$q")
IFS='|' read -r tls plain versions dns <<<"$row"
[ "${tls:-0}" -ge 1 ] && [ "$plain" = 0 ] || fail "pg_stat_ssl: $row"
pass "the database's network connections: $tls over TLS ($versions, client $dns), $plain without"

## Stopping the api: fast 503s, the breaker opens, recovery by itself --------------------------------------------------
quiet dc stop -t 5 api
lat=()
codes=()
for i in $(seq 1 20); do
  r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 --cacert "$cacert" "$url/api/todos")
  codes+=("${r% *}"); lat+=("${r#* }")
done
log "  with the api stopped: statuses ${codes[*]}"
last=("${codes[@]:10}")
for c in "${last[@]}"; do [ "$c" = 503 ] || fail "with the api stopped, request answered $c (want 503): ${codes[*]}"; done
sorted=$(printf '%s\n' "${lat[@]:10}" | sort -n)
p50=$(echo "$sorted" | sed -n 5p); pmax=$(echo "$sorted" | tail -1)
figure "503 latency with the api stopped (last 10 requests): p50 $(awk -v s="$p50" 'BEGIN{printf "%.1f ms", s*1000}'), max $(awk -v s="$pmax" 'BEGIN{printf "%.1f ms", s*1000}')"
awk -v s="$pmax" 'BEGIN{exit !(s < 0.5)}' || fail "503s are not fast: max ${pmax}s"
m=$(metrics)
opened=$(echo "$m" | awk '/^drawbridge_breaker_transitions_total\{/ && /upstream="api"/ && /to="open"/ {s+=$NF} END{print s+0}')
[ "$opened" -ge 1 ] || fail "the api breaker did not open: $(echo "$m" | grep -E 'drawbridge_breaker|target_healthy' | head)"
log "  api breaker opened ($opened transition(s) to open); $(echo "$m" | grep '^drawbridge_upstream_target_healthy{' | grep 'upstream="api"' | head -1)"
t0=$(ms)
quiet dc start api
wait_for "the api recovers through the edge" 60 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert '$cacert' '$url/api/todos')\" = 200 ]"
figure "api start to 200 through the edge again: $(( ($(ms) - t0) )) ms"
pass "stopped api: fast 503s and an open breaker; started again, it recovers by itself"

## Killing the edge's process: restarted and healthy again ----------------------------------------------------------
restarts=$(docker inspect -f '{{.RestartCount}}' "$edge")
pid=$(docker inspect -f '{{.State.Pid}}' "$edge")
t0=$(ms)
kill -KILL "$pid"
wait_for "the edge restarts" 60 bash -c "[ \"\$(docker inspect -f '{{.RestartCount}}' $edge)\" -gt $restarts ]"
wait_for "the edge healthy again" 90 healthy edge
wait_for "the app through the restarted edge" 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert '$cacert' '$url/api/todos')\" = 200 ]"
figure "edge SIGKILL to healthy and serving: $(( ($(ms) - t0) )) ms"
pass "a killed edge is restarted by its restart policy and serves again"

## Rotating the database password and the CA passphrase, no rebuild ---------------------------------------------------
./secrets.sh --rotate db_password >/dev/null
wait_for "the db follows the new password" 30 bash -c "dc() { docker compose -f '$deploy/compose.yaml' \"\$@\"; }; dc logs --no-color db | grep -q 'database password rotated'"
wait_for "a todo created after the password rotation" 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert '$cacert' -X POST -H 'Content-Type: application/json' -d '{\"title\":\"after db rotation\"}' '$url/api/todos')\" = 201 ]"
pass "db_password rotated in place: the db role and the api followed, no restart"
./secrets.sh --rotate ca_passphrase >/dev/null
wait_for "the edge re-seals its keys under the new passphrase" 60 bash -c "dc() { docker compose -f '$deploy/compose.yaml' \"\$@\"; }; dc logs --no-color edge | grep -qi 're-seal'"
[ "$(status /api/todos)" = 200 ] || fail "the app after the passphrase rotation"
# Processes that open the CA state anew (the issuer, the trust bundle, backups) do so with the new passphrase.
quiet dc restart -t 5 db-certs trust
wait_for "db-certs healthy with the new passphrase" 60 healthy db-certs
wait_for "trust healthy with the new passphrase" 60 healthy trust
[ "$(status /api/todos)" = 200 ] || fail "the app after restarting the issuers"
pass "ca_passphrase rotated in place: keys re-sealed, the app kept working, the CA opens with the new passphrase"

## Backup, wipe, restore -------------------------------------------------------------------------------------------
for t in "restore me 1" "restore me 2"; do
  [ "$(status /api/todos -X POST -H 'Content-Type: application/json' -d "{\"title\":\"$t\"}")" = 201 ] || fail "create $t"
done
before=$(https "$url/api/todos")
# The backup services run at start: restart them for a fresh archive and dump.
written() { dc logs --no-color "$1" 2>/dev/null | grep -c "$2" || true; }
ca_n=$(written backup '"backup written"') db_n=$(written db-backup '"db backup written"')
quiet dc restart -t 5 backup db-backup
wait_for "a new CA archive" 90 bash -c "[ \$(docker logs $(container backup) 2>&1 | grep -c '\"backup written\"') -gt $ca_n ]"
wait_for "a new pg_dump" 90 bash -c "[ \$(docker logs $(container db-backup) 2>&1 | grep -c '\"db backup written\"') -gt $db_n ]"
mkdir -p "$work/restore"
docker cp "$(container backup):/var/lib/drawbridge/." "$work/restore/ca" >/dev/null
docker cp "$(container db-backup):/var/lib/postgresql/." "$work/restore/db" >/dev/null
archive=$(ls -1t "$work"/restore/ca/drawbridge-*.backup | head -1)
dump=$(ls -1t "$work"/restore/db/todo-*.dump | head -1)
[ -s "$archive" ] && [ -s "$dump" ] || fail "no archive or dump"
figure "backup sizes: CA archive $(wc -c < "$archive") bytes, pg_dump $(wc -c < "$dump") bytes"
chmod -R a+rX "$work/restore"
quiet dc down -v --timeout 5
[ -z "$(docker volume ls -q --filter label=com.docker.compose.project=$project)" ] || fail "volumes left after down -v"
log "  stack down, every volume removed"
t0=$(ms)
dc run --rm --no-deps -v "$work/restore/ca:/restore:ro" edge restore "/restore/$(basename "$archive")" \
  --state-dir /var/lib/drawbridge/pki --passphrase-file /run/secrets/ca_passphrase >"$work/restore.log" 2>&1 ||
  { cat "$work/restore.log"; fail "drawbridge restore"; }
grep -q '"restored"' "$work/restore.log" || { cat "$work/restore.log"; fail "no restored line"; }
dc up -d --wait --wait-timeout 240 >"$work/up.log" 2>&1 || { tail -20 "$work/up.log"; fail "up after the restore"; }
dc exec -T db pg_restore -h /tmp -U postgres -d todo --clean --if-exists --no-owner <"$dump" || fail "pg_restore"
figure "restore (CA + database) to serving again: $(( ($(ms) - t0) / 1000 )) s"
after=$(https "$url/api/todos") || fail "the app after the restore, with the CA file from before the wipe"
[ "$after" = "$before" ] || fail "todos after the restore: $after, before: $before"
docker cp "$(container trust):/trust/ca.crt" "$work/ca-after.crt" >/dev/null
root_after=$(openssl x509 -in "$work/ca-after.crt" -noout -fingerprint -sha256 | cut -d= -f2)
[ "$root_after" = "$root_before" ] || fail "root fingerprint after the restore: $root_after, before: $root_before"
pass "backup, wipe (down -v), restore: the todos are back and the CA root is the same ($root_after)"

## Hardening as the engine sees it ---------------------------------------------------------------------------------
n=0
for c in $(dc ps -q); do
  name=$(docker inspect -f '{{.Name}}' "$c")
  read -r user ro caps nnp priv mem cpus pids <<<"$(docker inspect -f '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.CapDrop}} {{json .HostConfig.SecurityOpt}} {{.HostConfig.Privileged}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}' "$c")"
  uid=${user%%:*}
  [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$uid" != root ] || fail "$name runs as '$user'"
  [ "$ro" = true ] || fail "$name: root file system not read-only"
  [ "$caps" = '["ALL"]' ] || fail "$name: cap_drop $caps"
  [[ $nnp == *no-new-privileges* ]] || fail "$name: security_opt $nnp"
  [ "$priv" = false ] || fail "$name: privileged"
  [ "$mem" -gt 0 ] && [ "$cpus" -gt 0 ] && [ "${pids:-0}" -gt 0 ] || fail "$name: limits memory=$mem cpus=$cpus pids=$pids"
  # The process itself: effective UID and capabilities inside the container.
  pid=$(docker inspect -f '{{.State.Pid}}' "$c")
  euid=$(awk '/^Uid:/ {print $3}' "/proc/$pid/status"); capeff=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
  [ "$euid" != 0 ] && [ "$capeff" = 0000000000000000 ] || fail "$name: process uid $euid, CapEff $capeff"
  log "  $name: user $user, read-only, cap_drop ALL, no-new-privileges, mem $((mem / 1048576)) MiB, cpus $(awk -v n="$cpus" 'BEGIN{print n/1e9}'), pids $pids, process uid $euid CapEff 0"
  n=$((n + 1))
done
pass "docker inspect: $n containers non-root, read-only, without capabilities, with limits"
quiet dc down -v --timeout 5
pass "down -v"

## Development: hot reload through the edge, in Chromium ---------------------------------------------------------------
# compose.yaml + compose.dev.yaml with the web and api sources mounted from copies (TODO_WEB_SRC, TODO_API_SRC), so the
# test can edit them. The edge runs its production image here (a third file resets its dev target): this phase proves
# the web's and the api's reloads, which the edge carries (esbuild's /esbuild SSE stream and the API's answers).
if [ "${E2E_DEV:-1}" = 1 ]; then
  mkdir -p "$work/dev-src"
  cp -R ../examples/todo/web "$work/dev-src/web" && cp -R ../examples/todo/api "$work/dev-src/api"
  chmod -R a+rwX "$work/dev-src"
  cat >"$work/dev-edge.yaml" <<YAML
services:
  edge:
    build: !reset null
    image: drawbridge:$DRAWBRIDGE_TAG
    working_dir: !reset null
    environment: !reset {}
    volumes: !override
      - $deploy/drawbridge/edge.yaml:/etc/drawbridge/edge.yaml:ro
      - pki:/var/lib/drawbridge
    tmpfs: !override ["/tmp:size=16m"]
    healthcheck: !override
      test: ["CMD", "/drawbridge", "healthcheck", "http://127.0.0.1:9090/livez"]
      interval: 5s
      timeout: 3s
      retries: 3
      start_period: 20s
    cpus: 1.0
    mem_limit: 384m
YAML
  ddc() { TODO_WEB_SRC="$work/dev-src/web" TODO_API_SRC="$work/dev-src/api" \
    docker compose -f "$deploy/compose.yaml" -f "$deploy/compose.dev.yaml" -f "$work/dev-edge.yaml" "$@"; }
  t0=$(ms); quiet ddc build -q web-dev api; figure "build of the web and api dev targets: $(( ($(ms) - t0) / 1000 )) s"
  ddc up -d --wait --wait-timeout 240 >"$work/up.log" 2>&1 || { tail -20 "$work/up.log"; ddc logs --tail 20 web api; ddc down -v --timeout 5 >/dev/null 2>&1; fail "compose up (dev)"; }
  docker cp "$(ddc ps -q trust):/trust/ca.crt" "$cacert" >/dev/null
  t0=$(ms)
  browser TestHotReload E2E_WEB_SRC="$work/dev-src/web" E2E_API_SRC="$work/dev-src/api" ||
    { ddc down -v --timeout 5 >/dev/null 2>&1; exit 1; }
  figure "hot reload in Chromium through the edge (component text, then an API route): $(( ($(ms) - t0) / 1000 )) s"
  pass "dev: an edited component shows in the open page by itself, a new API route answers the page's fetch"
  quiet ddc down -v --timeout 5
fi
fi

## Swarm: deploy/stack.yaml needs several nodes (edge replicas one per node, the CA on a labelled node); it is tested
## on a real three-node swarm under faults by deploy/multinode.sh (.ci/test runs it after this script).

log "figures:"
printf '  %s\n' "${figures[@]}"
