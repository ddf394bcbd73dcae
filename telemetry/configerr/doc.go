// Package configerr is the typed form of a configuration problem: the key
// path it is about and what is wrong, kept apart so that a loader can put a
// problem at its line and prefix a section's paths without parsing
// messages. Every package's Validate returns a List; it imports nothing of
// ours, so every package may use it.
package configerr
