// Package telemetry is how drawbridge is observed: the one JSON log stream
// (log/slog), and the instruments the other packages are handed. It imports
// nothing else of drawbridge, so every package may use it.
package telemetry
