// Package secret holds drawbridge's secrets (CA passphrase, tokens, API
// keys injected toward upstreams) in memory only, read from where the
// configuration points: "file:/run/secrets/NAME" (Docker and Swarm secrets)
// or, for development only, "env:NAME".
//
// File secrets rotate without a restart. Compose mounts a file secret as a
// bind mount that only sees in-place writes, while Swarm and Kubernetes
// swap symlinks, so a Watcher both polls the content on an interval and
// watches the directory. A new value is validated before it is used; a bad
// one is refused, logged, counted and audited, and the old value stays in
// service. A secret's value is never formatted: printing a *Secret shows
// its name.
//
// Only the binary reads secrets: the data plane takes header secrets
// through proxy.SecretSource, which cmd adapts a Watcher to.
package secret
