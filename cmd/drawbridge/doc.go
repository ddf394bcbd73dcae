// Command drawbridge is the one binary of the project: the gateway (run),
// the configuration checker (validate), a self-contained demonstration
// (demo), the probe a scratch image's HEALTHCHECK runs (healthcheck) and
// version information. main only composes the packages; it holds no logic
// of its own beyond flags and wiring.
package main
