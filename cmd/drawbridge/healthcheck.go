package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func healthcheckCommand(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := newFlagSet("healthcheck [--timeout 3s] URL",
		"Probe URL with GET. Exit 0 if it answers 2xx within the timeout, else print one\n"+
			"line saying why and exit 1. A scratch image has no shell or curl: its Docker\n"+
			"HEALTHCHECK runs this, e.g. drawbridge healthcheck http://127.0.0.1:9090/readyz.\n"+
			"file:///PATH checks a file instead: it exists, is not empty, a PEM certificate in\n"+
			"it is valid now, and with --max-age it changed within that long", stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	maxAge := fs.Duration("max-age", 0, "file:// URLs: the file must have changed within this long (0: any age)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "healthcheck: exactly one URL is required")
		return 2
	}
	var err error
	switch {
	case strings.HasPrefix(fs.Arg(0), "file:"):
		err = probeFile(fs.Arg(0), *maxAge, time.Now())
	case *maxAge != 0:
		err = errMaxAgeHTTP
	default:
		err = probe(ctx, fs.Arg(0), *timeout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "unhealthy: %v\n", err)
		return 1
	}
	return 0
}

func probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("bad URL %q: %w", url, err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
