package pki_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

// Example wires the PKI as the gateway does: Open opens the sealed state
// dir, opens (or creates) the CA and builds a Manager; the example manages
// two identities and connects them over mutual TLS.
func Example() {
	dir, _ := os.MkdirTemp("", "drawbridge-example")
	defer os.RemoveAll(dir)
	passFile := filepath.Join(dir, "ca-passphrase")
	_ = os.WriteFile(passFile, []byte("an example passphrase, not a real one\n"), 0o600)

	cfg := pki.Config{StateDir: filepath.Join(dir, "state"), PassphraseFile: passFile}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	p, err := pki.Open(ctx, cfg, pki.Deps{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	mgr := p.Manager

	api := identity.MustNew(cfg.TrustDomain, "api")
	web := identity.MustNew(cfg.TrustDomain, "web")
	for _, id := range []identity.ID{api, web} {
		if err := mgr.Manage(ctx, id, nil); err != nil {
			log.Fatal(err)
		}
	}
	srvCfg, _ := mgr.ServerConfig(cert.ServerOptions{Identity: api, Mutual: true})
	cliCfg, _ := mgr.ClientConfig(cert.ClientOptions{Identity: web, ServerID: api})

	inner, _ := net.Listen("tcp", "127.0.0.1:0")
	ln := mgr.Listener(inner, srvCfg, cert.ListenerOptions{})
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		peer, err := identity.FromConnectionState(c.(*tls.Conn).ConnectionState())
		fmt.Println("server sees", peer, err)
		c.Close()
	}()
	c, err := tls.Dial("tcp", inner.Addr().String(), cliCfg)
	if err != nil {
		log.Fatal(err)
	}
	_, _ = c.Read(make([]byte, 1)) // wait for the server to finish and close
	c.Close()
	// Output: server sees spiffe://drawbridge.internal/web <nil>
}
