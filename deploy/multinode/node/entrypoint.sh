#!/bin/sh
# mn-node: a Swarm node's Docker engine in the foreground (deploy/multinode.sh starts it).
#
# --privileged is refused on the machine this was built on ("unable to apply caps: operation not permitted": the
# VM's capability bounding set lacks CAP_SYS_RESOURCE), so the node runs with every other capability, no seccomp or
# AppArmor profile, unmasked /proc and every device allowed, and here makes what --privileged would have made
# writable: /sys and the cgroup v1 hierarchies, where the nested engine creates its containers' cgroups.
set -eu
mount -o remount,rw /sys
for d in /sys/fs/cgroup/*/; do
	d=${d%/}
	if grep -q " $d cgroup ro," /proc/self/mounts; then mount -o remount,bind,rw "$d"; fi
done
# A node that was stopped (the node-loss fault) and started again keeps its root file system: the engine's and
# containerd's pid files from the last run would stop them from starting.
rm -rf /var/run/docker.pid /var/run/docker
# Storage: overlay2 on the /var/lib/docker volume; MN_STORAGE overrides (vfs, fuse-overlayfs).
exec dockerd --host unix:///var/run/docker.sock --storage-driver "${MN_STORAGE:-overlay2}" \
	--log-level "${MN_LOG_LEVEL:-warn}" "$@"
