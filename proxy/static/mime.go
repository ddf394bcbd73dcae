package static

import (
	"mime"
	"path"
	"strings"
)

// types are the web's file types, kept here rather than read from the
// host's /etc/mime.types, which a scratch image does not have and which
// differs between distributions (.js as application/javascript).
var types = map[string]string{
	".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
	".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
	".json": "application/json", ".map": "application/json", ".webmanifest": "application/manifest+json",
	".txt": "text/plain; charset=utf-8", ".xml": "application/xml", ".csv": "text/csv; charset=utf-8",
	".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
	".webp": "image/webp", ".avif": "image/avif", ".ico": "image/vnd.microsoft.icon",
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".wasm": "application/wasm", ".pdf": "application/pdf",
	".mp4": "video/mp4", ".webm": "video/webm", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
}

// contentType is the type of a file by its extension; unknown types are
// application/octet-stream, never sniffed (nosniff is sent with it).
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := types[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Cache-Control values.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// fingerprinted reports a content hash in a file name as the common
// bundlers write it: main.3f9a2b1c.js and main.3f9a2b1c.chunk.js
// (webpack), index-DiwrgTda.js (Vite, Rollup), app-5WJ3ZQKX.css
// (esbuild): a part of 8 to 64 characters after a '.' or '-', before the
// extension, that looks like a hash rather than a word.
func fingerprinted(base string) bool {
	parts := strings.FieldsFunc(base, func(c rune) bool { return c == '.' || c == '-' })
	if len(parts) < 3 { // name, hash, extension at least
		return false
	}
	for _, p := range parts[1 : len(parts)-1] {
		if len(p) >= 8 && len(p) <= 64 && isHashChars(p) && looksLikeHash(p) {
			return true
		}
	}
	return false
}

func isHashChars(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}

// cacheControl says how long a browser may keep a file: a year, never
// revalidated, for a fingerprinted name (a new build has a new name), and
// revalidation on every use for the rest, the index above all: it names
// the current build's assets.
func cacheControl(name string, index bool) string {
	if index {
		return cacheRevalidate
	}
	if fingerprinted(path.Base(name)) {
		return cacheImmutable
	}
	return cacheRevalidate
}

// looksLikeHash tells a hash from a word: it has a digit, or mixes upper
// and lower case ("bootstrap.min.js" and "jquery-ui.js" are not hashed;
// "index-DiwrgTda.js" is).
func looksLikeHash(s string) bool {
	var digit, upper, lower bool
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		}
	}
	return digit || upper && lower
}
