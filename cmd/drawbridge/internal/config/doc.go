// Package config is the schema of drawbridge's YAML file and its loader.
// Each section's type belongs to the package that uses it (proxy.Config,
// telemetry.LogConfig, ...); this package composes them, decodes strictly
// (an unknown key is an error), fills defaults in one place and reports
// every problem at once with its key path and line.
package config
