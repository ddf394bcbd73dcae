#!/usr/bin/env bash
# deploy/multinode.sh: deploy/stack.yaml on a real three-node Docker Swarm on this machine, under faults.
#
# Three Docker engines run as containers (deploy/multinode/node: Debian's docker.io on the project's Debian base),
# one manager and two workers. The images reach each node with `docker save | docker load`; the stack is deployed
# from this checkout with short certificate lifetimes; then, under a steady bounded load through the edge nodes'
# published ports (deploy/multinode/load: a load balancer that checks each edge's /readyz, retries off, every
# response counted), it runs each fault and prints a table of the figures:
#
#   baseline        no fault
#   node loss       a worker running an edge replica stops; the replica is rescheduled; the node comes back
#   rolling update  the edge image changes (start-first, health-gated): 0 failed requests
#   CA down         the ca service is away longer than a renewal interval: traffic flows, the edges say
#                   "CA unreachable since ...", renewals resume when it is back, no certificate expires
#   partition       a worker is cut off from the others (iptables in the node): its tasks are rescheduled
#   app loss        an api task is killed: health checks and breakers route around it
#
# Every wait is bounded; every container, volume and network it makes is named mn-* and removed on exit (also on
# failure or Ctrl-C). Needs: Docker and Go; it builds what else it needs when missing: the base images' stand-ins
# (deploy/images/bootstrap.sh), the Compose v2 plugin and the images of deploy/compose.yaml.
#
#   deploy/multinode.sh                       # the whole run (about 12 minutes on two cores)
#   MN_KEEP=1 deploy/multinode.sh             # leave the nodes up on failure, to look at them
#   MN_REPORT=FILE deploy/multinode.sh        # also write the table (Markdown) to FILE
set -euo pipefail
cd "$(dirname "$0")"
deploy=$PWD
repo=$(cd .. && pwd)
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

readonly stack=mn                  # the stack's name on the swarm
export DRAWBRIDGE_TAG=${DRAWBRIDGE_TAG:-latest} TODO_TAG=${TODO_TAG:-latest} # the images' tags, as in compose.yaml
readonly nodes=(mn-node1 mn-node2 mn-node3)
readonly rate=${MN_RATE:-20}       # requests per second during each phase
readonly ca_down=${MN_CA_DOWN:-80} # seconds; > the edges' renewal interval (leaf 4m, renewed with 3m left: every 60s)
start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/mn.XXXXXX")
load_pid=""
rows=()
failed_checks=0

log() { printf '[mn %4ds] %s\n' "$((SECONDS - start))" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
check() { # check NAME OK|FAIL DETAIL: a verdict in the table's last column
	[ "$2" = OK ] || failed_checks=$((failed_checks + 1))
	log "  $2: $1${3:+ ($3)}"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; fi
	if [ "$rc" != 0 ] && [ "${MN_KEEP:-0}" = 1 ]; then
		log "kept for inspection: ${nodes[*]} (docker exec -it mn-node1 docker service ls); work dir $work"
		exit "$rc"
	fi
	if [ "$rc" != 0 ]; then
		log "on failure, the manager's view:"
		n1 service ls 2>&1 | sed 's/^/    /' >&2 || true
		n1 service ps --no-trunc "${stack}_edge" "${stack}_ca" 2>&1 | tail -n 12 | sed 's/^/    /' >&2 || true
	fi
	for n in "${nodes[@]}"; do docker rm -f "$n" >/dev/null 2>&1 || true; done
	for n in "${nodes[@]}"; do docker volume rm "$n-docker" >/dev/null 2>&1 || true; done
	docker network rm mn-net >/dev/null 2>&1 || true
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# n1 runs docker against the manager's engine (its socket is in $work/sock/mn-node1).
n1() { docker -H "unix://$work/sock/mn-node1/docker.sock" "$@"; }
on() { local n=$1; shift; docker exec "$n" "$@"; }

# wait_for WHAT SECONDS CMD...: poll CMD every second until it succeeds, at most SECONDS.
wait_for() {
	local what=$1 limit=$2 t0=$SECONDS; shift 2
	until "$@" >/dev/null 2>&1; do
		[ $((SECONDS - t0)) -lt "$limit" ] || die "$what: not within ${limit}s"
		sleep 1
	done
	log "  $what ($((SECONDS - t0)) s)"
}

port_of() { docker port "$1" "$2/tcp" | head -n1 | sed 's/.*://'; } # NODE CONTAINER-PORT -> host port

# ---------------------------------------------------------------------------------------------------------------
prepare_images() {
	command -v python3 >/dev/null || "$repo/.ci/install-deps" python3   # reads the load client's JSON
	"$deploy/images/bootstrap.sh" # the base images' stand-ins (golang, debian) where a tag is missing; quiet when there
	local missing=0 img
	for img in "drawbridge:$DRAWBRIDGE_TAG" "todo-web:$TODO_TAG" "todo-api:$TODO_TAG" "todo-db:$TODO_TAG" "todo-prometheus:$TODO_TAG"; do
		docker image inspect "$img" >/dev/null 2>&1 || missing=1
	done
	if [ "$missing" = 1 ]; then
		log "building the stack's images (docker compose build)"
		docker compose version >/dev/null 2>&1 || "$deploy/images/compose-v2.sh" # a fresh machine has only Compose v1
		# The gateway first: the web image copies its binary.
		{ docker compose -f "$deploy/compose.yaml" build edge && docker compose -f "$deploy/compose.yaml" build; } \
			>"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; die "image build"; }
	fi
	log "building the node image and the load client"
	docker build -q -t mn-node:latest "$deploy/multinode/node" >/dev/null 2>"$work/node-build.log" ||
		{ cat "$work/node-build.log"; die "node image build"; }
	# The rolling update's new edge image: the same gateway under another image ID.
	printf 'FROM drawbridge:%s\nLABEL org.drawbridge.multinode=v2\n' "$DRAWBRIDGE_TAG" |
		docker build -q -t drawbridge:mn-v2 - >/dev/null 2>"$work/v2-build.log" || { cat "$work/v2-build.log"; die "v2 image"; }
	(cd "$repo" && go build -o "$work/load" ./deploy/multinode/load) || die "building the load client"
}

# start_nodes runs the three engines. --privileged is refused here (deploy/multinode/node/entrypoint.sh says why):
# every capability but CAP_SYS_RESOURCE, no seccomp/AppArmor, unmasked /proc, all devices.
start_nodes() {
	docker network create mn-net >/dev/null
	local n
	for n in "${nodes[@]}"; do
		mkdir -p "$work/sock/$n"
		docker run -d --name "$n" --hostname "$n" --network mn-net \
			--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
			--security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm' \
			-v "$n-docker:/var/lib/docker" -v "$work/sock/$n:/run/mn" -v "$work/share:$work/share:ro" \
			-p 127.0.0.1::443 -p 127.0.0.1::9443 \
			mn-node:latest --host unix:///run/mn/docker.sock >/dev/null
	done
	for n in "${nodes[@]}"; do wait_for "$n: engine up" 60 on "$n" docker info; done
}

ip_of() { docker inspect -f '{{(index .NetworkSettings.Networks "mn-net").IPAddress}}' "$1"; }

form_swarm() {
	local ip1 tok n
	ip1=$(ip_of mn-node1)
	on mn-node1 docker swarm init --advertise-addr "$ip1" --dispatcher-heartbeat 2s >/dev/null
	tok=$(on mn-node1 docker swarm join-token -q worker)
	for n in mn-node2 mn-node3; do on "$n" docker swarm join --token "$tok" "$ip1:2377" >/dev/null; done
	wait_for "three nodes ready" 60 bash -c "[ \$(docker exec mn-node1 docker node ls --format '{{.Status}}' | grep -c Ready) = 3 ]"
	on mn-node1 docker node update --label-add drawbridge.ca=true mn-node1 >/dev/null
	for n in "${nodes[@]}"; do on mn-node1 docker node update --label-add drawbridge.edge=true "$n" >/dev/null; done
}

load_images() {
	local t0=$SECONDS common=("drawbridge:$DRAWBRIDGE_TAG" drawbridge:mn-v2 "todo-web:$TODO_TAG" "todo-api:$TODO_TAG")
	docker save "${common[@]}" "todo-db:$TODO_TAG" "todo-prometheus:$TODO_TAG" | on_stdin mn-node1 docker load -q >/dev/null &
	docker save "${common[@]}" | on_stdin mn-node2 docker load -q >/dev/null &
	docker save "${common[@]}" | on_stdin mn-node3 docker load -q >/dev/null &
	wait
	log "  images loaded into the nodes ($((SECONDS - t0)) s)"
}
on_stdin() { local n=$1; shift; docker exec -i "$n" "$@"; }

# test_stack copies the stack and its files with the test's settings:
# - no `encrypted` on the overlays: this kernel has neither ESP nor GCM (CONFIG_INET_ESP, CONFIG_CRYPTO_GCM unset),
#   so the engine's IPsec state is refused ("Failed Adding rSA ... function not implemented") and encrypted overlays
#   carry nothing between nodes. Production keeps them (deploy/stacktest insists).
# - leaves of 4 minutes renewed with 3 left, checks every 2 s, a 3 s shutdown_delay (the load balancer checks every
#   250 ms), so the CA-down phase outlasts a renewal interval within a CI budget.
test_stack() {
	mkdir -p "$work/share"
	cp -R "$deploy/stack.yaml" "$deploy/swarm" "$deploy/scripts" "$work/share/"
	sed -i '/driver_opts: {encrypted: "true"}/d' "$work/share/stack.yaml"
	grep -q "encrypted: " "$work/share/stack.yaml" && die "the test stack still has an encrypted overlay"
	sed -i 's/^  identity: ca$/  identity: ca\n  leaf_lifetime: 4m\n  renewal_ratio: 0.75\n  check_interval: 2s/' "$work/share/swarm/ca.yaml"
	# The enrolling side decides when to renew: 0.75 there too (renewed every 60 s, 3 minutes left at the worst).
	sed -i 's/^  check_interval: 30s.*/  check_interval: 2s\n  renewal_ratio: 0.75/; s/^shutdown_delay: 10s/shutdown_delay: 3s/' "$work/share/swarm/edge.yaml"
	for f in api-sidecar web-sidecar; do
		sed -i 's/^  passphrase_file: \(.*\)/  passphrase_file: \1\n  check_interval: 2s\n  renewal_ratio: 0.75/' "$work/share/swarm/$f.yaml"
	done
	grep -q 'leaf_lifetime: 4m' "$work/share/swarm/ca.yaml" && grep -q 'check_interval: 2s' "$work/share/swarm/edge.yaml" ||
		die "the test settings did not apply"
}

deploy_stack() {
	local t0=$SECONDS
	SECRETS_DIR="$work/secrets" "$deploy/secrets.sh" >/dev/null
	SECRETS_DIR="$work/secrets" DOCKER_HOST="unix://$work/sock/mn-node1/docker.sock" "$deploy/secrets.sh" --swarm --version mn >/dev/null
	cp "$work/secrets/ca_passphrase" "$work/share/ca_passphrase"
	chmod 0444 "$work/share/ca_passphrase"
	# The CA is made once, before the stack, on the node whose volume holds it; then its bundle becomes a config.
	local run=(run --rm --user 65532:65532 --read-only --cap-drop ALL --network none -v "${stack}_pki:/var/lib/drawbridge"
		-v "$work/share/swarm/ca.yaml:/etc/drawbridge/ca.yaml:ro" -v "$work/share/ca_passphrase:/run/secrets/ca_passphrase:ro"
		"drawbridge:$DRAWBRIDGE_TAG")
	n1 volume create "${stack}_pki" >/dev/null
	n1 "${run[@]}" ca init --config /etc/drawbridge/ca.yaml >/dev/null
	n1 "${run[@]}" ca bundle --config /etc/drawbridge/ca.yaml >"$work/ca.crt"
	n1 config create "ca_bundle_mn" "$work/ca.crt" >/dev/null
	rm -f "$work/share/ca_passphrase"
	SECRETS_VERSION=mn CONFIGS_VERSION=mn CA_BUNDLE_VERSION=mn EDGE_HTTPS_PORT=443 EDGE_HEALTH_PORT=9443 \
		n1 stack deploy --resolve-image never -c "$work/share/stack.yaml" "$stack" >"$work/deploy.log" 2>&1 ||
		{ cat "$work/deploy.log"; die "docker stack deploy"; }
	wait_for "every service at its replica count, healthy" 420 all_running
	wait_for "HTTPS through both edge nodes" 120 edges_serve 2
	deploy_s=$((SECONDS - t0))
}

# all_running: every service has as many running tasks as it wants, and no task is starting or unhealthy.
all_running() {
	local line want got
	while read -r line; do
		got=${line%/*}; want=${line#*/}; want=${want%% *}
		[ "$got" = "$want" ] || return 1
	done < <(n1 service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Replicas}}')
	for n in "${nodes[@]}"; do
		if on "$n" docker ps --format '{{.Status}}' 2>/dev/null | grep -qE 'starting|unhealthy'; then return 1; fi
	done
}

# edge_nodes lists the nodes running an edge task now.
edge_nodes() { n1 service ps "${stack}_edge" --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' | awk '$2=="Running"{print $1}' | sort -u; }

# edges_serve N: N nodes answer the app over HTTPS on their published port.
edges_serve() {
	local ok=0 n
	for n in $(edge_nodes); do
		curl -sf --max-time 3 --cacert "$work/ca.crt" --resolve "localhost:$(port_of "$n" 443):127.0.0.1" \
			"https://localhost:$(port_of "$n" 443)/api/todos" >/dev/null && ok=$((ok + 1))
	done
	[ "$ok" -ge "$1" ]
}

# ---------------------------------------------------------------------------------------------------------------
# Load: one load balancer over the three nodes' published ports, for one phase.
load_start() {
	local b=() h=() n
	for n in "${nodes[@]}"; do b+=("127.0.0.1:$(port_of "$n" 443)"); h+=("127.0.0.1:$(port_of "$n" 9443)"); done
	"$work/load" -backends "$(IFS=,; echo "${b[*]}")" -health "$(IFS=,; echo "${h[*]}")" -ca "$work/ca.crt" \
		-rate "$rate" -max 400s >"$work/phase.json" 2>"$work/phase.err" &
	load_pid=$!
	phase_t0=$SECONDS
}
load_stop() { # load_stop: end the phase's load; its summary is in $work/phase.json
	kill -INT "$load_pid"
	wait "$load_pid" || die "load client: $(cat "$work/phase.err")"
	load_pid=""
}
# row PHASE NOTE RULE: the phase's line in the table. RULE is zero (no request may fail) or tail (none may fail in
# the last 10 s: traffic recovered).
row() {
	local total failed secs tailf verdict=OK
	total=$(json total) failed=$(json failed) secs=$(json seconds) tailf=$(json failed_last_10s)
	case $3 in
	zero) [ "$failed" = 0 ] || verdict=FAILED ;;
	tail) [ "$tailf" = 0 ] || verdict=FAILED ;;
	esac
	[ "$verdict" = OK ] || failed_checks=$((failed_checks + 1))
	rows+=("| $1 | ${secs%.*} s | $total | $failed | $(ratio "$failed" "$total") | $tailf | $2; $verdict |")
	log "  $1: $failed failed of $total in ${secs%.*} s, $tailf in the last 10 s: $verdict"
	if [ "$failed" != 0 ]; then python3 -c 'import json,sys; [print("    "+e) for e in json.load(open(sys.argv[1])).get("errors",[])[:8]]' "$work/phase.json" >&2; fi
}
# replicas_of SERVICE: its running/desired count as `docker service ls` shows it (2/2).
replicas_of() { n1 service ls --filter "name=${stack}_$1" --format '{{.Name}} {{.Replicas}}' | awk -v s="${stack}_$1" '$1==s{print $2}'; }
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))' "$work/phase.json" "$1"; }
ratio() { python3 -c 'import sys; f,t=int(sys.argv[1]),int(sys.argv[2]); print("%.2f%%" % (100.0*f/t if t else 0))' "$1" "$2"; }

status_json() { # status_json NODE: the edge's /status.json on that node (the admin token is in $work/secrets)
	curl -sf --max-time 3 -H "Authorization: Bearer $(cat "$work/secrets/drawbridge_admin_token")" \
		"http://127.0.0.1:$(port_of "$1" 9443)/status.json"
}
ca_unreachable_on() { status_json "$1" | python3 -c 'import json,sys; c=json.load(sys.stdin).get("ca") or {}; sys.exit(0 if c.get("unreachable_since") else 1)'; }
ca_reachable_on() { status_json "$1" | python3 -c 'import json,sys; c=json.load(sys.stdin).get("ca") or {}; sys.exit(0 if c.get("url") and not c.get("unreachable_since") else 1)'; }
# leaf_expiry NODE: the newest expiry of the edge's own leaf (Unix seconds), from its status page.
leaf_expiry() {
	status_json "$1" | python3 -c '
import json,sys,datetime
s=json.load(sys.stdin)
t=[c["not_after"] for c in s.get("certificates",[]) if c["name"]=="leaf spiffe://drawbridge.internal/drawbridge"]
print(int(datetime.datetime.fromisoformat(max(t).replace("Z","+00:00")).timestamp()) if t else 0)'
}

# ---------------------------------------------------------------------------------------------------------------
phase_baseline() {
	log "phase: baseline (no fault)"
	load_start; sleep 20
	load_stop
	row "baseline" "no fault" zero
}

phase_node_loss() {
	log "phase: node loss"
	local victim t0
	victim=$(edge_nodes | grep -v '^mn-node1$' | head -n1)
	[ -n "$victim" ] || die "no worker runs an edge replica: $(edge_nodes | tr '\n' ' ')"
	load_start; sleep 5
	t0=$SECONDS
	docker stop -t 2 "$victim" >/dev/null
	log "  stopped $victim (it ran an edge replica)"
	wait_for "the lost edge rescheduled: two edges serving on the other nodes" 120 bash -c \
		"[ \$(docker -H unix://$work/sock/mn-node1/docker.sock service ps ${stack}_edge --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' | awk '\$2==\"Running\" && \$1!=\"$victim\"' | wc -l) -ge 2 ]"
	local resched=$((SECONDS - t0))
	wait_for "HTTPS through both edges" 60 edges_serve 2
	sleep 10
	load_stop
	row "node loss ($victim)" "edge rescheduled in ${resched} s" tail
	docker start "$victim" >/dev/null
	wait_for "$victim back in the swarm" 120 bash -c "docker exec mn-node1 docker node ls --format '{{.Hostname}} {{.Status}}' | grep -q '^$victim Ready'"
	wait_for "every service at its replica count again" 240 all_running
}

phase_rolling_update() {
	log "phase: rolling update of the edge image (start-first, health-gated)"
	load_start; sleep 5
	local t0=$SECONDS
	timeout 300 docker -H "unix://$work/sock/mn-node1/docker.sock" service update --detach=false --quiet \
		--no-resolve-image --image drawbridge:mn-v2 "${stack}_edge" >"$work/update.log" 2>&1 || { cat "$work/update.log"; die "service update"; }
	local took=$((SECONDS - t0))
	wait_for "both edges on the new image" 60 bash -c \
		"[ \$(docker -H unix://$work/sock/mn-node1/docker.sock service ps ${stack}_edge --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' | grep -c '^drawbridge:mn-v2 Running') -ge 2 ]"
	sleep 5
	load_stop
	row "rolling update" "both edges replaced in ${took} s" zero
}

phase_ca_down() {
	log "phase: CA down for ${ca_down}s (renewals every 60 s)"
	local edges before=() n i=0 down_t
	mapfile -t edges < <(edge_nodes)
	for n in "${edges[@]}"; do before+=("$(leaf_expiry "$n")"); done
	load_start; sleep 5
	n1 service scale "${stack}_ca=0" --detach=true >/dev/null
	down_t=$SECONDS
	wait_for "the edges say CA unreachable" 30 bash -c "$(declare -f status_json ca_unreachable_on port_of); work=$work; for n in ${edges[*]}; do ca_unreachable_on \$n || exit 1; done"
	while [ $((SECONDS - down_t)) -lt "$ca_down" ]; do
		for n in "${edges[@]}"; do
			[ "$(leaf_expiry "$n")" -gt "$(date +%s)" ] || die "$n holds an expired leaf while the CA is away"
		done
		sleep 5
	done
	n1 service scale "${stack}_ca=1" --detach=true >/dev/null
	wait_for "the CA back" 120 bash -c "$(declare -f n1 replicas_of); work=$work stack=$stack; [ \"\$(replicas_of ca)\" = 1/1 ]"
	wait_for "the edges reach the CA again" 60 bash -c "$(declare -f status_json ca_reachable_on port_of); work=$work; for n in ${edges[*]}; do ca_reachable_on \$n || exit 1; done"
	local renewed=0
	for n in "${edges[@]}"; do
		wait_for "$n renewed its leaf after the CA came back" 90 bash -c "$(declare -f status_json leaf_expiry port_of); work=$work; [ \$(leaf_expiry $n) -gt $(( before[i] + ca_down )) ]"
		renewed=$((renewed + 1)); i=$((i + 1))
	done
	sleep 5
	load_stop
	row "CA down ${ca_down} s" "\"CA unreachable since\" on ${#edges[@]}/${#edges[@]} edges, no leaf expired, ${renewed}/${#edges[@]} renewed after" zero
}

phase_partition() {
	local victim others=() n t0
	victim=$(edge_nodes | grep -v '^mn-node1$' | head -n1)
	[ -n "$victim" ] || victim=mn-node3
	log "phase: partition of $victim (iptables in the node drops the other nodes)"
	for n in "${nodes[@]}"; do [ "$n" = "$victim" ] || others+=("$(ip_of "$n")"); done
	load_start; sleep 5
	t0=$SECONDS
	for ip in "${others[@]}"; do
		on "$victim" iptables -I INPUT 1 -s "$ip" -j DROP
		on "$victim" iptables -I OUTPUT 1 -d "$ip" -j DROP
	done
	wait_for "the manager marks $victim down" 60 bash -c "docker exec mn-node1 docker node ls --format '{{.Hostname}} {{.Status}}' | grep -q '^$victim Down'"
	wait_for "its tasks rescheduled: every service at its count on the other nodes" 180 all_running_elsewhere "$victim"
	local resched=$((SECONDS - t0))
	sleep 10
	load_stop
	row "partition ($victim)" "its tasks rescheduled in ${resched} s" tail
	for ip in "${others[@]}"; do
		on "$victim" iptables -D INPUT -s "$ip" -j DROP
		on "$victim" iptables -D OUTPUT -d "$ip" -j DROP
	done
	wait_for "$victim back in the swarm" 120 bash -c "docker exec mn-node1 docker node ls --format '{{.Hostname}} {{.Status}}' | grep -q '^$victim Ready'"
}
# all_running_elsewhere NODE: every service's desired replicas run on nodes other than NODE.
all_running_elsewhere() {
	local s want got
	for s in $(n1 service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Name}}'); do
		want=$(n1 service inspect -f '{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}0{{end}}' "$s")
		got=$(n1 service ps "$s" --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' | awk -v v="$1" '$1!=v && $2=="Running"' | wc -l)
		[ "$got" -ge "$want" ] || return 1
	done
}

phase_app_loss() {
	log "phase: app replica loss (an api task killed)"
	local n cid=""
	for n in "${nodes[@]}"; do
		cid=$(on "$n" docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_api" | head -n1)
		[ -n "$cid" ] && break
	done
	[ -n "$cid" ] || die "no api task found"
	load_start; sleep 5
	on "$n" docker kill "$cid" >/dev/null
	log "  killed api task $cid on $n"
	sleep 15
	wait_for "the api back at its replica count" 90 bash -c "$(declare -f n1 replicas_of); work=$work stack=$stack; [ \"\$(replicas_of api)\" = 2/2 ]"
	sleep 10
	load_stop
	row "app loss (api task on $n)" "routed around, task replaced" tail
}

# ---------------------------------------------------------------------------------------------------------------
main() {
	log "preparing images"
	prepare_images
	test_stack
	log "starting three engines"
	start_nodes
	form_swarm
	load_images
	log "deploying $deploy/stack.yaml"
	deploy_stack
	log "stack serving over HTTPS on two edges $deploy_s s after deploy began"
	phase_baseline
	phase_node_loss
	phase_rolling_update
	phase_ca_down
	phase_partition
	phase_app_loss
	local table
	table=$(printf '%s\n' "| phase | length | requests | failed | failed / total | failed in the last 10 s | result |" \
		"|---|---|---|---|---|---|---|" "${rows[@]}")
	printf '\nthree-node swarm (1 manager, 2 workers), %s req/s through the edge nodes, stack serving %s s after deploy; total %s s\n\n%s\n' \
		"$rate" "$deploy_s" "$((SECONDS - start))" "$table"
	if [ -n "${MN_REPORT:-}" ]; then printf '%s\n' "$table" >"$MN_REPORT"; fi
	[ "$failed_checks" = 0 ] || die "$failed_checks check(s) failed"
	log "PASS"
}
main "$@"
