// Package stacktest checks the deployment files in deploy/ without Docker: compose.yaml, compose.yaml with the
// compose.dev.yaml override, and stack.yaml (swarm). Every service must show the CIS Docker Benchmark items of
// sections 4 and 5 that a compose file can express: a numeric non-root user, a read-only root file system, all
// capabilities dropped and none added, no-new-privileges, not privileged, no host network, PID, IPC or user namespace,
// no devices, memory, CPU and pids limits, a health check, a restart policy (swarm: restart_policy and a rolling
// update_config), rotated json-file logs, no secret in the environment, no Docker socket and only read-only bind mounts
// of the project's own files, published ports on 127.0.0.1 (swarm: host mode on the edge only), only the edge on more
// than one network, and every network but public internal (swarm: encrypted overlays). It also runs
// `drawbridge validate` on every drawbridge configuration the stacks mount. It holds tests only.
package stacktest
