module github.com/drawbridge-proxy/drawbridge

go 1.26

toolchain go1.26.11
