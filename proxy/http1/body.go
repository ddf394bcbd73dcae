package http1

import (
	"bufio"
	"errors"
	"io"
	"strconv"
)

// ErrTruncated means the peer closed before the body it announced was
// complete.
var ErrTruncated = errors.New("http1: body truncated")

// maxChunkLine bounds a chunk-size line, extensions included.
const maxChunkLine = 4096

// maxTrailerBytes bounds the trailer section of a chunked body, CRLFs and
// the final empty line included. net/http refuses a trailer section that
// does not fit its 4 KiB read buffer; so does this reader.
const maxTrailerBytes = 4 << 10

// maxChunkOverhead bounds the bytes of chunk framing beyond 16 per chunk
// plus twice its data, as net/http does against bodies of many tiny chunks
// with long extensions (CVE-2023-39326).
const maxChunkOverhead = 16 << 10

// LengthReader reads a body of a known length from br.
type LengthReader struct {
	br   *bufio.Reader
	left int64
	err  error
}

// NewLengthReader reads exactly n bytes of br.
func NewLengthReader(br *bufio.Reader, n int64) *LengthReader {
	return &LengthReader{br: br, left: n}
}

// Reset reuses lr for another body.
func (lr *LengthReader) Reset(br *bufio.Reader, n int64) { *lr = LengthReader{br: br, left: n} }

func (lr *LengthReader) Read(p []byte) (int, error) {
	if lr.err != nil {
		return 0, lr.err
	}
	if lr.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > lr.left {
		p = p[:lr.left]
	}
	n, err := lr.br.Read(p)
	lr.left -= int64(n)
	switch {
	case lr.left == 0:
		return n, io.EOF
	case err == io.EOF:
		lr.err = ErrTruncated
		return n, lr.err
	case err != nil:
		lr.err = err
	}
	return n, err
}

// Done reports whether the whole body was read.
func (lr *LengthReader) Done() bool { return lr.left == 0 && lr.err == nil }

// ChunkedReader decodes a chunked body (RFC 9112 section 7.1) strictly:
// hex sizes without sign, space or overflow; extensions of tokens and
// quoted strings only; CRLF after every chunk; trailer fields checked like
// header fields.
type ChunkedReader struct {
	br      *bufio.Reader
	left    int64 // bytes of the current chunk still to read
	inChunk bool
	done    bool
	err     error
	// OnTrailer, when set, is called for each trailer field; Name and Value
	// are only valid during the call.
	OnTrailer func(Field)
	trailerN  int
	excess    int64 // framing bytes beyond the allowance, see maxChunkOverhead
}

// NewChunkedReader decodes the chunked body at br.
func NewChunkedReader(br *bufio.Reader) *ChunkedReader { return &ChunkedReader{br: br} }

// Reset reuses cr for another body.
func (cr *ChunkedReader) Reset(br *bufio.Reader) {
	*cr = ChunkedReader{br: br, OnTrailer: cr.OnTrailer}
}

// Done reports whether the last chunk and the trailers were read.
func (cr *ChunkedReader) Done() bool { return cr.done && cr.err == nil }

func (cr *ChunkedReader) Read(p []byte) (int, error) {
	if cr.err != nil {
		return 0, cr.err
	}
	if cr.done {
		return 0, io.EOF
	}
	if !cr.inChunk {
		if err := cr.beginChunk(); err != nil {
			cr.err = err
			return 0, err
		}
		if cr.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > cr.left {
		p = p[:cr.left]
	}
	n, err := cr.br.Read(p)
	cr.left -= int64(n)
	if cr.left == 0 {
		if err2 := cr.endChunk(); err2 != nil {
			cr.err = err2
			return n, err2
		}
		return n, nil
	}
	if err == io.EOF {
		err = ErrTruncated
	}
	if err != nil {
		cr.err = err
	}
	return n, err
}

func (cr *ChunkedReader) beginChunk() error {
	line, err := cr.readLine()
	if err != nil {
		return err
	}
	size, err := parseChunkSize(line)
	if err != nil {
		return err
	}
	cr.excess = max(0, cr.excess+int64(len(line))+2-16-2*size)
	if cr.excess > maxChunkOverhead {
		return errChunkOverhead
	}
	if size == 0 {
		return cr.readTrailers()
	}
	cr.left, cr.inChunk = size, true
	return nil
}

func (cr *ChunkedReader) endChunk() error {
	cr.inChunk = false
	b, err := cr.br.Peek(2)
	if err != nil {
		if err == io.EOF {
			return ErrTruncated
		}
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errChunkEnd
	}
	_, _ = cr.br.Discard(2)
	return nil
}

// readLine returns the next CRLF-terminated line without its CRLF.
func (cr *ChunkedReader) readLine() ([]byte, error) {
	line, err := cr.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > maxChunkLine:
		return nil, errChunkExt
	case err == io.EOF:
		return nil, ErrTruncated
	case err != nil:
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errBareLF
	}
	return line[:len(line)-2], nil
}

func (cr *ChunkedReader) readTrailers() error {
	for {
		line, err := cr.readLine()
		if errors.Is(err, errChunkExt) {
			return errTrailer // a line over maxChunkLine is over maxTrailerBytes too
		}
		if err != nil {
			return err
		}
		cr.trailerN += len(line) + 2
		if cr.trailerN > maxTrailerBytes {
			return errTrailer
		}
		if len(line) == 0 {
			cr.done = true
			return nil
		}
		f, err := parseField(line)
		if err != nil || isFramingField(f.Name) {
			return errTrailer
		}
		if cr.OnTrailer != nil {
			cr.OnTrailer(f)
		}
	}
}

// parseChunkSize reads 1*HEXDIG [ext]: at most 15 digits (no overflow), and
// an extension of ";name[=token|quoted-string]" pairs with optional
// whitespace after the size's first ";".
func parseChunkSize(line []byte) (int64, error) {
	i := 0
	var n int64
	for ; i < len(line); i++ {
		d, ok := hexDigit(line[i])
		if !ok {
			break
		}
		if i >= 15 {
			return 0, errChunkSize
		}
		n = n<<4 | int64(d)
	}
	if i == 0 {
		return 0, errChunkSize
	}
	// No whitespace between the size and the first ";": RFC 9112 allows
	// BWS there, but net/http refuses it, so one of two hops would not.
	if i < len(line) && (line[i] != ';' || !validChunkExt(line[i:])) {
		return 0, errChunkExt
	}
	return n, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// validChunkExt checks *( BWS ";" BWS name [ BWS "=" BWS value ] ).
func validChunkExt(b []byte) bool {
	for len(b) > 0 {
		b = trimOWS(b)
		if len(b) == 0 || b[0] != ';' {
			return false
		}
		b = trimOWS(b[1:])
		j := 0
		for j < len(b) && isTchar(b[j]) {
			j++
		}
		if j == 0 {
			return false
		}
		b = trimOWS(b[j:])
		if len(b) == 0 || b[0] != '=' {
			continue
		}
		b = trimOWS(b[1:])
		var ok bool
		if b, ok = extValue(b); !ok {
			return false
		}
	}
	return true
}

// extValue consumes a token or a quoted-string and returns the rest.
func extValue(b []byte) ([]byte, bool) {
	if len(b) > 0 && b[0] == '"' {
		for j := 1; j < len(b); j++ {
			switch c := b[j]; {
			case c == '"':
				return b[j+1:], true
			case c == '\\':
				j++
				if j >= len(b) || b[j] < 0x20 && b[j] != '\t' || b[j] == 0x7f {
					return nil, false
				}
			case c < 0x20 && c != '\t' || c == 0x7f:
				return nil, false
			}
		}
		return nil, false
	}
	j := 0
	for j < len(b) && isTchar(b[j]) {
		j++
	}
	return b[j:], j > 0
}

// ChunkedWriter encodes a chunked body onto w. Close writes the last chunk
// (and any trailers given to WriteTrailers before it).
type ChunkedWriter struct {
	w        *bufio.Writer
	trailers []byte
}

// NewChunkedWriter encodes chunks onto w.
func NewChunkedWriter(w *bufio.Writer) *ChunkedWriter { return &ChunkedWriter{w: w} }

// Reset reuses cw for another body.
func (cw *ChunkedWriter) Reset(w *bufio.Writer) { *cw = ChunkedWriter{w: w, trailers: cw.trailers[:0]} }

func (cw *ChunkedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var size [16]byte
	b := strconv.AppendInt(size[:0], int64(len(p)), 16)
	b = append(b, '\r', '\n')
	if _, err := cw.w.Write(b); err != nil {
		return 0, err
	}
	n, err := cw.w.Write(p)
	if err != nil {
		return n, err
	}
	_, err = cw.w.WriteString("\r\n")
	return n, err
}

// AddTrailer queues a trailer field for Close. The caller checks name and
// value (no CR, LF or NUL).
func (cw *ChunkedWriter) AddTrailer(name, value string) {
	cw.trailers = append(cw.trailers, name...)
	cw.trailers = append(cw.trailers, ": "...)
	cw.trailers = append(cw.trailers, value...)
	cw.trailers = append(cw.trailers, '\r', '\n')
}

// Close writes the last chunk, the trailers and the final CRLF.
func (cw *ChunkedWriter) Close() error {
	if _, err := cw.w.WriteString("0\r\n"); err != nil {
		return err
	}
	if _, err := cw.w.Write(cw.trailers); err != nil {
		return err
	}
	_, err := cw.w.WriteString("\r\n")
	return err
}
