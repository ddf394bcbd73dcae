// Package demoapp is the pair of services 'drawbridge demo' puts behind the
// gateway: a web page and a small JSON todo API, both in memory on loopback.
package demoapp
