// Package ratelimit holds token buckets (golang.org/x/time/rate) per key
// in a bounded table, and a cap on requests in flight.
//
// The table is a sharded LRU: when it is full, the key used longest ago
// is forgotten, so a flood of distinct keys (one per spoofed address)
// costs a fixed amount of memory and only resets buckets of keys that are
// idle anyway. State is per process: several gateways each allow the rate.
package ratelimit
