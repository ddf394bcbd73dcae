#!/usr/bin/env bash
# bootstrap.sh builds local stand-ins for the public base images that our Dockerfiles name, for machines that reach no
# container registry. Each stand-in carries exactly the tag of the public image, so the Dockerfiles stay unchanged:
#
#   golang:1.26-bookworm   busybox (static) + the Go toolchain pinned by go.mod's toolchain line + this machine's CA bundle
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm, apt pointed at Debian's mirror, this machine's CA certs
#
# A tag that already exists is left alone (a real image pulled from a registry is never replaced), except a stand-in of
# ours built for another Go version than go.mod pins. --force rebuilds. Quiet on success; -v reports each step and its time.
#
# Usage: deploy/images/bootstrap.sh [-v] [--force] [golang|debian ...]     (no names: both)
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR, TMPDIR.
set -euo pipefail

readonly GO_TAG=golang:1.26-bookworm
readonly DEBIAN_TAG=debian:bookworm-slim
readonly SUITE=bookworm
readonly DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
readonly HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
readonly HOST_CA_LOCAL=/usr/local/share/ca-certificates
readonly LABEL=org.drawbridge.standin # value: what the stand-in was built from, e.g. go1.26.11

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO_ROOT
VERBOSE=0
FORCE=0

die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }
log() { if [[ $VERBOSE == 1 ]]; then printf 'bootstrap: %s\n' "$*" >&2; fi; }

# run hides a command's output unless it fails (or -v), so success stays quiet and failure shows why.
run() {
	if [[ $VERBOSE == 1 ]]; then "$@" >&2; return; fi
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	if [[ $rc != 0 ]]; then printf '%s\n' "$out" | tail -n 40 >&2; die "failed ($rc): $*"; fi
}

as_root() {
	if [[ $(id -u) == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else die "need root for: $*"; fi
}

# need_pkgs installs Debian packages (for the given commands) that the host lacks.
need_pkgs() {
	local missing=() pkg
	for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg"); done
	[[ ${#missing[@]} == 0 ]] && return
	command -v apt-get >/dev/null || die "missing host packages ${missing[*]} and no apt-get to install them"
	log "installing host packages: ${missing[*]}"
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
		run as_root apt-get update -qq
		run as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	fi
}

# want_build says whether TAG must be (re)built: it is missing, --force, or it is a stand-in of ours from another SOURCE.
want_build() {
	local tag=$1 source=$2 have
	[[ $FORCE == 1 ]] && return 0
	have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$tag" 2>/dev/null) || return 0
	[[ -n $have && $have != "<no value>" && $have != "$source" ]]
}

# go_toolchain prints the toolchain go.mod pins (toolchain line, else go line), e.g. go1.26.11.
go_toolchain() {
	local v
	v=$(sed -n 's/^toolchain \(go[0-9.]*\)$/\1/p' "$REPO_ROOT/go.mod")
	[[ -n $v ]] || v=go$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$REPO_ROOT/go.mod")
	[[ $v =~ ^go1\.[0-9]+\.[0-9]+$ ]] || die "cannot read a full Go version (go1.X.Y) from the toolchain line of $REPO_ROOT/go.mod"
	printf '%s\n' "$v"
}

# import_rootfs turns directory ROOT into image TAG; the remaining arguments are docker import --change lines.
import_rootfs() {
	local root=$1 tag=$2 source=$3; shift 3
	local changes=(--change "LABEL $LABEL=$source") c
	for c in "$@"; do changes+=(--change "$c"); done
	tar -C "$root" --numeric-owner --owner=0 --group=0 --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
		docker import "${changes[@]}" --message "drawbridge stand-in for $tag ($source)" - "$tag" >/dev/null ||
		die "docker import of $tag failed"
}

build_golang() {
	local goversion arch mod dir root
	goversion=$(go_toolchain)
	want_build "$GO_TAG" "$goversion" || { log "$GO_TAG present"; return 0; }
	need_pkgs busybox-static
	command -v go >/dev/null || die "a host Go is needed to download the toolchain module"
	arch=$(go env GOARCH)
	mod="golang.org/toolchain@v0.0.1-$goversion.linux-$arch"
	log "downloading $mod"
	# Outside any module, with no toolchain switching: a plain module download through the proxy (checked by sum.golang.org).
	dir=$(cd "$WORK" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[[ -d $dir/bin && -x $dir/bin/go ]] || die "downloading $mod gave no Go tree (dir '$dir')"

	root=$WORK/golang
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc/ssl/certs,root,tmp,go/bin,go/src,usr/local}
	cp /bin/busybox "$root/bin/busybox"
	local applet
	while read -r applet; do
		[[ $applet == linuxrc || -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
	done < <("$root/bin/busybox" --list-full)
	cp -R "$dir" "$root/usr/local/go"
	chmod -R u+w,go-w "$root/usr/local/go"
	# The standard library's test data (a third of the tree's files) serves only `go test std`; every build step
	# that commits a layer on this image walks the tree, so it goes.
	find "$root/usr/local/go/src" -type d -name testdata -prune -exec rm -rf {} +
	cp "$HOST_CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
	printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
	chmod 1777 "$root/tmp" "$root/go"
	chmod 0700 "$root/root"
	log "importing $GO_TAG"
	# The ENV lines mirror the official golang image (its GOTOOLCHAIN=local included).
	import_rootfs "$root" "$GO_TAG" "$goversion" \
		"ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		"ENV GOLANG_VERSION=${goversion#go}" "ENV GOTOOLCHAIN=local" "ENV GOPATH=/go" "ENV HOME=/root" \
		"WORKDIR /go" 'CMD ["sh"]'
}

build_debian() {
	local root=$WORK/debian source="debootstrap-$SUITE-minbase"
	want_build "$DEBIAN_TAG" "$source" || { log "$DEBIAN_TAG present"; return 0; }
	need_pkgs debootstrap
	log "debootstrap $SUITE from $DEBIAN_MIRROR"
	run as_root debootstrap --variant=minbase "$SUITE" "$root" "$DEBIAN_MIRROR"

	# apt sources as in the official image: the release, its updates and the security archive.
	rm -f "$root/etc/apt/sources.list"
	mkdir -p "$root/etc/apt/sources.list.d"
	printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$DEBIAN_MIRROR" "$SUITE" "$SUITE" "$DEBIAN_SECURITY_MIRROR" "$SUITE" >"$root/etc/apt/sources.list.d/debian.sources"
	# Slim like the official image: no docs, man pages or translations from later installs; apt cleans its cache.
	printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' 'path-exclude /usr/share/man/*' \
		'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
		'path-exclude /usr/share/lintian/*' >"$root/etc/dpkg/dpkg.cfg.d/docker"
	printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
		'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
		'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$root/etc/apt/apt.conf.d/docker-clean"
	printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
	rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/cache/apt/*.bin \
		"$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/*
	# This machine's TLS trust: the bundle for tools that read it directly, and the local CAs where update-ca-certificates
	# (run when an image installs ca-certificates) picks them up, so HTTPS keeps working after that rebuilds the bundle.
	mkdir -p "$root/etc/ssl/certs" "$root$HOST_CA_LOCAL"
	cp "$HOST_CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
	if compgen -G "$HOST_CA_LOCAL/*.crt" >/dev/null; then cp "$HOST_CA_LOCAL"/*.crt "$root$HOST_CA_LOCAL/"; fi
	log "importing $DEBIAN_TAG"
	import_rootfs "$root" "$DEBIAN_TAG" "$source" 'CMD ["bash"]'
}

main() {
	local names=() name
	while [[ $# -gt 0 ]]; do
		case $1 in
		-v | --verbose) VERBOSE=1 ;;
		-f | --force) FORCE=1 ;;
		-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
		golang | debian) names+=("$1") ;;
		*) die "unknown argument '$1' (usage: bootstrap.sh [-v] [--force] [golang|debian ...])" ;;
		esac
		shift
	done
	[[ ${#names[@]} -gt 0 ]] || names=(golang debian)
	command -v docker >/dev/null || die "docker CLI not found"
	docker version >/dev/null 2>&1 || die "cannot reach the Docker engine (docker version fails)"

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/drawbridge-bootstrap.XXXXXX")
	trap 'as_root rm -rf "$WORK"' EXIT
	# One bootstrap at a time per machine: concurrent CI jobs would otherwise both import the same tag.
	exec 9>"${TMPDIR:-/tmp}/drawbridge-bootstrap.lock"
	flock 9
	for name in "${names[@]}"; do
		local start=$SECONDS
		"build_$name"
		log "$name done in $((SECONDS - start)) s"
	done
}

main "$@"
