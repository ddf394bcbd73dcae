// Command drawbridge is the one binary of the project. Its commands:
//
//   - run: serve a configuration file until SIGINT/SIGTERM, then drain
//   - sidecar: run for an instance without the CA key (pki.enroll)
//   - validate: print every problem of a configuration file, with lines
//   - demo: a complete gateway on built-in demo services, no files needed
//   - ca init|status|rotate|bundle: the internal CA
//   - cert issue: a certificate to files for a service that speaks TLS
//   - trust-bundle: the CA's trust bundle to a file, kept current
//   - backup, restore: encrypted archives of the PKI state and the config
//   - audit verify: check the hash chain of an audit log
//   - status: a running gateway's golden metrics in the terminal
//   - healthcheck: the probe a scratch image's HEALTHCHECK runs
//   - version: version, commit and Go version
//
// main only composes the packages; it holds no logic of its own beyond
// flags and wiring. Its internal packages: config (the file schema and
// its strict loader), admin (the admin listener and its token), secret
// (secrets from files, watched), tlswire (the PKI as the data plane's
// TLS provider), demoapp (the demo's web page and API), certfiles (the
// certificate and trust bundle files cert issue and trust-bundle write)
// and statusview (the status command's fetch and screen).
package main
