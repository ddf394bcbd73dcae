module github.com/drawbridge-proxy/drawbridge

go 1.26.0

toolchain go1.26.11

require (
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/sync v0.25.0
)

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
)
