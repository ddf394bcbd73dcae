// Package pkitest is an in-memory certificate authority for tests: a root,
// and leaves signed by it with any flaw a test needs (expired, not yet
// valid, wrong key usage, a CA certificate used as a leaf, another CA).
//
// It is for _test.go files only; nothing here is fit for production (keys
// live in memory, nothing is sealed or rotated).
package pkitest
