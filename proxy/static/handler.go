package static

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/accept"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Results of a request, for logs and metrics: a bounded set.
const (
	ResultFile        = "file"         // a file, or a directory's index
	ResultFallback    = "spa_fallback" // the SPA fallback for an unknown path
	ResultNotFound    = "not_found"    // 404 (the configured page or JSON)
	ResultRedirect    = "redirect"     // a directory without its trailing slash
	ResultNotAllowed  = "not_allowed"  // a method other than GET and HEAD
	ResultServerError = "error"        // the root or a file could not be read
)

// Deps are what the handler needs from its host.
type Deps struct {
	// Error writes an error response with status (404, 405, 500); nil
	// writes http.Error's plain text.
	Error func(w http.ResponseWriter, r *http.Request, status int)
	// Served, when set, learns each request's result and the content
	// coding served ("" for identity).
	Served func(r *http.Request, result, encoding string)
}

// Handler serves the files under Config.Root by the request's URL.Path,
// which the caller has already cleaned (and stripped of a route prefix).
type Handler struct {
	cfg  Config
	deps Deps
}

// New checks that root is a directory and that the configured files exist
// in it, and returns the handler. cfg must have had Defaults and Validate.
func New(cfg Config, deps Deps) (*Handler, error) {
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, configerr.List{{Path: "root", Msg: err.Error()}}
	}
	defer root.Close()
	var errs configerr.List
	for _, f := range []struct{ key, name string }{{"spa_fallback", cfg.SPAFallback}, {"not_found", cfg.NotFound}} {
		if f.name == "" {
			continue
		}
		if fi, err := root.Stat(strings.TrimPrefix(f.name, "/")); err != nil {
			errs.Add(f.key, "%v", err)
		} else if !fi.Mode().IsRegular() {
			errs.Add(f.key, "%q is not a regular file", f.name)
		}
	}
	if deps.Error == nil {
		deps.Error = func(w http.ResponseWriter, _ *http.Request, status int) {
			http.Error(w, http.StatusText(status), status)
		}
	}
	return &Handler{cfg: cfg, deps: deps}, errs.Err()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, http.StatusMethodNotAllowed, ResultNotAllowed)
		return
	}
	root, err := os.OpenRoot(h.cfg.Root)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, ResultServerError)
		return
	}
	defer root.Close()
	urlPath := r.URL.Path
	rel := strings.TrimPrefix(path.Clean("/"+urlPath), "/")
	if rel == "" {
		rel = "."
	}
	if hidden(rel) {
		h.notFound(w, r, root)
		return
	}
	fi, err := root.Stat(rel)
	switch {
	case err == nil && fi.IsDir():
		if !strings.HasSuffix(urlPath, "/") && rel != "." {
			h.redirectToDir(w, r)
			return
		}
		h.serveIndex(w, r, root, path.Join(rel, h.cfg.Index))
	case err == nil && fi.Mode().IsRegular():
		h.serveFile(w, r, root, rel, fi, false, ResultFile)
	default: // absent, unreadable, outside root, or neither file nor directory
		h.fallbackOrNotFound(w, r, root)
	}
}

// serveIndex serves a directory's index file, or what a missing file gets.
func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request, root *os.Root, name string) {
	fi, err := root.Stat(name)
	if err != nil || !fi.Mode().IsRegular() {
		h.fallbackOrNotFound(w, r, root)
		return
	}
	h.serveFile(w, r, root, name, fi, true, ResultFile)
}

func (h *Handler) fallbackOrNotFound(w http.ResponseWriter, r *http.Request, root *os.Root) {
	if h.cfg.SPAFallback != "" && isNavigation(r) {
		name := strings.TrimPrefix(h.cfg.SPAFallback, "/")
		if fi, err := root.Stat(name); err == nil && fi.Mode().IsRegular() {
			h.serveFile(w, r, root, name, fi, true, ResultFallback)
			return
		}
	}
	h.notFound(w, r, root)
}

// notFound answers 404 with the configured page, else the host's error.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, root *os.Root) {
	if h.cfg.NotFound == "" {
		h.fail(w, r, http.StatusNotFound, ResultNotFound)
		return
	}
	data, err := root.ReadFile(strings.TrimPrefix(h.cfg.NotFound, "/"))
	if err != nil {
		h.fail(w, r, http.StatusNotFound, ResultNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", contentType(h.cfg.NotFound))
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	h.served(r, ResultNotFound, "")
	w.WriteHeader(http.StatusNotFound)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, result string) {
	h.served(r, result, "")
	h.deps.Error(w, r, status)
}

func (h *Handler) served(r *http.Request, result, encoding string) {
	if h.deps.Served != nil {
		h.deps.Served(r, result, encoding)
	}
}

// redirectToDir sends /docs to /docs/ with a relative Location, so it is
// right whatever prefix a proxy in front stripped (net/http's FileServer
// does the same).
func (h *Handler) redirectToDir(w http.ResponseWriter, r *http.Request) {
	target := path.Base(r.URL.Path) + "/"
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	h.served(r, ResultRedirect, "")
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusMovedPermanently)
}

// serveFile serves name (or its best precompressed sibling) with
// http.ServeContent, which answers conditional and Range requests.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, root *os.Root, name string, fi fs.FileInfo, index bool, result string) {
	hd := w.Header()
	hd.Set("Content-Type", contentType(name))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", cacheControl(name, index))
	enc, sib, sfi, any := precompressed(root, name, r.Header.Get("Accept-Encoding"))
	if any {
		hd.Add("Vary", "Accept-Encoding")
	}
	if enc != "" {
		name, fi = sib, sfi
		hd.Set("Content-Encoding", enc)
	}
	f, err := root.Open(name)
	if err != nil {
		hd.Del("Content-Encoding")
		h.fail(w, r, http.StatusInternalServerError, ResultServerError)
		return
	}
	defer f.Close()
	hd.Set("ETag", etag(fi, enc))
	h.served(r, result, enc)
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// etag is a strong validator from the file's modification time and size
// (nginx's shape), with the coding in it: two codings of one file are
// different representations (RFC 9110 section 8.8.3).
func etag(fi fs.FileInfo, enc string) string {
	tag := fmt.Sprintf("%x-%x", fi.ModTime().UnixNano()/int64(time.Microsecond), fi.Size())
	if enc != "" {
		tag += "-" + enc
	}
	return `"` + tag + `"`
}

// siblings are the precompressed files looked for, in the server's order
// of preference: smallest first.
var siblings = []struct{ coding, ext string }{{"br", ".br"}, {"zstd", ".zst"}, {"gzip", ".gz"}}

// precompressed returns the coding, file name and info of the best
// sibling of name the client accepts ("" for none), and whether name has
// any sibling at all (then the response varies by Accept-Encoding).
func precompressed(root *os.Root, name, acceptEncoding string) (string, string, fs.FileInfo, bool) {
	var offers []string
	infos := map[string]fs.FileInfo{}
	for _, s := range siblings {
		if fi, err := root.Stat(name + s.ext); err == nil && fi.Mode().IsRegular() {
			offers = append(offers, s.coding)
			infos[s.coding] = fi
		}
	}
	enc := accept.Encoding(acceptEncoding, offers...)
	for _, s := range siblings {
		if enc != "" && s.coding == enc {
			return enc, name + s.ext, infos[enc], true
		}
	}
	return "", "", nil, len(offers) > 0
}

// hidden reports a path with a dotfile or dot-directory segment; only
// .well-known (RFC 8615) is served.
func hidden(rel string) bool {
	for seg := range strings.SplitSeq(rel, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." && seg != ".well-known" {
			return true
		}
	}
	return false
}

// isNavigation reports a request a browser makes to load a page, which a
// single-page app answers itself, rather than a request for an asset.
func isNavigation(r *http.Request) bool {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		return true
	}
	return !strings.Contains(path.Base(r.URL.Path), ".")
}
