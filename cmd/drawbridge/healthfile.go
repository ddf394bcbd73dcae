package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// probeFile is the healthcheck of a file:///PATH URL, for containers that
// write files rather than serve (cert issue --watch, trust-bundle, backup):
// PATH must exist; a regular file must not be empty, and when it holds PEM
// certificates the first one must be valid now; with maxAge > 0, PATH must
// have been modified within maxAge (a directory changes when an entry is
// added, so a backup directory's age is that of its newest archive).
func probeFile(raw string, maxAge time.Duration, now time.Time) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
		return fmt.Errorf("bad file URL %q: want file:///ABSOLUTE/PATH", raw)
	}
	fi, err := os.Stat(u.Path)
	if err != nil {
		return err
	}
	if maxAge > 0 {
		if age := now.Sub(fi.ModTime()); age > maxAge {
			return fmt.Errorf("%s was last modified %s ago (more than %s)", u.Path, age.Round(time.Second), maxAge)
		}
	}
	if fi.IsDir() {
		return nil
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%s is empty", u.Path)
	}
	data, err := os.ReadFile(u.Path)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", u.Path, err)
	}
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("%s: the certificate is not valid before %s", u.Path, c.NotBefore.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fmt.Errorf("%s: the certificate expired at %s", u.Path, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

var errMaxAgeHTTP = errors.New("--max-age applies to file:// URLs only")
