// Package telemetry is how drawbridge is observed: the one JSON log stream
// (log/slog), the Prometheus registry every package registers its metrics
// on (NewRegistry, with the Go and process collectors and
// drawbridge_build_info), and the OpenTelemetry tracer provider
// (NewTracing: OTLP over HTTP or gRPC, configured by the file and the
// OTEL_* environment variables, off by default). It imports nothing else of
// drawbridge, so every package may use it. Subpackages: audit (the security
// audit log) and status (the status page).
package telemetry
