package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// errCopyDone ends a relay direction whose writer cannot be half-closed:
// the other direction is not waited for.
var errCopyDone = errors.New("relay direction done")

// upgrade switches the client's connection to the protocol the upstream
// accepted (101 Switching Protocols; the route's allow-list has already
// let the Upgrade through) and relays bytes both ways until each side has
// finished, passing a half-close on where the connection supports one.
func (f *forwarder) upgrade(w http.ResponseWriter, in, out *http.Request, resp *http.Response) {
	want, got := upgradeType(out.Header), upgradeType(resp.Header)
	back, ok := resp.Body.(io.ReadWriteCloser)
	var err error
	switch {
	case !printable(got):
		err = fmt.Errorf("upstream switched to an invalid protocol %q", got)
	case !http1.EqualFold(want, got):
		err = fmt.Errorf("upstream switched to %q when %q was asked for", got, want)
	case !ok:
		err = errors.New("a 101 response whose body cannot be written")
	}
	if err != nil {
		resp.Body.Close()
		f.errs.proxyError(w, in, err)
		return
	}
	defer back.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		f.errs.proxyError(w, in, fmt.Errorf("taking the connection for %s: %w", got, err))
		return
	}
	defer conn.Close()
	// The client's request ending (a hard stop) ends the relay (golang/go#35559).
	stop := context.AfterFunc(in.Context(), func() { _ = back.Close() })
	defer stop()
	copyHeader(w.Header(), resp.Header)
	if err := writeSwitch(brw.Writer, w.Header()); err != nil {
		f.errs.proxyError(w, in, fmt.Errorf("writing the 101 response: %w", err))
		return
	}
	if err := f.relay(conn, brw.Reader, back); err != nil {
		f.errs.proxyError(w, in, fmt.Errorf("relaying %s: %w", got, err))
	}
}

func writeSwitch(bw *bufio.Writer, h http.Header) error {
	_, _ = bw.WriteString("HTTP/1.1 " + strconv.Itoa(http.StatusSwitchingProtocols) + " Switching Protocols\r\n")
	if err := h.Write(bw); err != nil {
		return err
	}
	_, _ = bw.WriteString("\r\n")
	return bw.Flush()
}

// relay copies client to back and back to client, each direction through a
// pooled buffer. What the client sent after its request head is in
// fromClient's buffer, so the client is read through it.
func (f *forwarder) relay(client io.Writer, fromClient io.Reader, back io.ReadWriter) error {
	errc := make(chan error, 2)
	go func() { errc <- f.pipe(back, fromClient) }()
	go func() { errc <- f.pipe(client, back) }()
	err := <-errc
	if err == nil {
		err = <-errc
	}
	if errors.Is(err, errCopyDone) {
		return nil
	}
	return err
}

// pipe copies src to dst, then half-closes dst: the peer learns that this
// direction is over while the other goes on.
func (f *forwarder) pipe(dst io.Writer, src io.Reader) error {
	bp := f.buffers.get()
	defer f.buffers.put(bp)
	if _, err := io.CopyBuffer(dst, src, *bp); err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	return errCopyDone
}
