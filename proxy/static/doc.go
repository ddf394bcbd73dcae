// Package static serves a directory of files, such as the built assets of
// a single-page application, as a route's handler.
//
// It keeps http.ServeContent's semantics (ETag, Last-Modified,
// conditional requests, Range), serves precompressed .br/.zst/.gz
// siblings to clients that accept them, marks fingerprinted asset names
// immutable and the index no-cache, never lists a directory, never serves
// a dotfile, and refuses any path (symlinks included) that leads out of
// the root: every open goes through an os.Root.
package static
