// Command todo-web-server serves the todo front end's production build until drawbridge's own static route takes
// over: the files of one directory, index.html for client-side routes, a precompressed .br or .gz sibling when the
// client accepts it, fingerprinted assets cached for a year and index.html never, /healthz. Standard library only, so
// the web image stays a scratch image of this binary and the built files.
//
//	todo-web-server -addr 127.0.0.1:8080 -root /srv/www
//	todo-web-server -healthcheck http://127.0.0.1:8080/healthz   (the image's HEALTHCHECK: no shell, no curl)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	root := flag.String("root", "/srv/www", "directory to serve")
	check := flag.String("healthcheck", "", "GET this URL, exit 0 on 200 (for HEALTHCHECK) and do nothing else")
	flag.Parse()
	if *check != "" {
		os.Exit(healthcheck(*check))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, *addr, *root); err != nil {
		slog.Error("todo-web-server", "err", err)
		os.Exit(1)
	}
}

func healthcheck(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

func serve(ctx context.Context, addr, root string) error {
	srv := &http.Server{Addr: addr, Handler: handler(root), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("serving", "addr", addr, "root", root)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler serves root. Paths are cleaned before they are joined, so none leaves root; dotfiles are never served.
func handler(root string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/healthz" {
			fmt.Fprintln(w, "ok")
			return
		}
		name := path.Clean("/" + r.URL.Path)
		if name == "/" || strings.Contains(name, "/.") || !isFile(filepath.Join(root, name)) {
			if path.Ext(name) != "" && name != "/" {
				http.NotFound(w, r) // a missing asset is a 404, not the page
				return
			}
			name = "/index.html" // a client-side route
		}
		if strings.HasPrefix(name, "/assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // content-hashed names
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		sendFile(w, r, root, name)
	})
}

// sendFile sends root+name, or its .br or .gz sibling when the client accepts that encoding and the sibling exists.
func sendFile(w http.ResponseWriter, r *http.Request, root, name string) {
	file := filepath.Join(root, name)
	w.Header().Add("Vary", "Accept-Encoding")
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	accept := r.Header.Get("Accept-Encoding")
	for _, enc := range []struct{ token, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
		if strings.Contains(accept, enc.token) && isFile(file+enc.ext) {
			w.Header().Set("Content-Encoding", enc.token)
			file += enc.ext
			break
		}
	}
	http.ServeFile(w, r, file)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
