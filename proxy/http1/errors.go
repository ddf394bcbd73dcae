package http1

import (
	"errors"
	"net/http"
)

// Error is a message refused by the strict profile. Status is what the
// client gets (400, 414, 417, 431, 501, 505); Reason is for logs and never
// echoes the offending bytes.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "http1: " + e.Reason }

// ErrIncomplete means the buffer does not hold a whole head yet: read more.
var ErrIncomplete = errors.New("http1: incomplete head")

func bad(reason string) error { return &Error{Status: http.StatusBadRequest, Reason: reason} }

// Refusals shared by several checks; allocated once.
var (
	errBareLF        = bad("line ending is a bare LF")
	errBareCR        = bad("bare CR")
	errObsFold       = bad("obs-fold (header line starting with whitespace)")
	errSpaceColon    = bad("whitespace before a colon")
	errHeaderName    = bad("invalid header name")
	errHeaderValue   = bad("control character in a header value")
	errNoColon       = bad("header line without a colon")
	errRequestLine   = bad("malformed request line")
	errMethod        = bad("invalid method")
	errTarget        = bad("invalid request target")
	errVersion       = bad("malformed HTTP version")
	errCLTE          = bad("both Content-Length and Transfer-Encoding")
	errCL            = bad("invalid Content-Length")
	errCLRepeated    = bad("Content-Length given more than once")
	errTE10          = bad("Transfer-Encoding in an HTTP/1.0 message")
	errTERepeated    = bad("Transfer-Encoding given more than once")
	errTE            = bad("Transfer-Encoding is not a list ending in one chunked")
	errTrailerField  = bad("Trailer announces a framing field")
	errChunkOverhead = bad("chunked body is mostly framing")
	errHostMissing   = bad("missing Host in an HTTP/1.1 request")
	errHostRepeated  = bad("Host given more than once")
	errHostInvalid   = bad("invalid Host")
	errHostMismatch  = bad("absolute-form target disagrees with Host")
	errChunkSize     = bad("invalid chunk size")
	errChunkExt      = bad("invalid chunk extension")
	errChunkEnd      = bad("chunk data not followed by CRLF")
	errTrailer       = bad("invalid trailer")
	errStatusLine    = bad("malformed status line")
	errTooManyFields = &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "too many header fields"}
	errHeadTooLarge  = &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "head too large"}
	errURITooLong    = &Error{Status: http.StatusRequestURITooLong, Reason: "request line too long"}
	errVersionNotSup = &Error{Status: http.StatusHTTPVersionNotSupported, Reason: "HTTP version not supported"}
	errTEUnknown     = &Error{Status: http.StatusNotImplemented, Reason: "unsupported transfer coding"}
	errExpect        = &Error{Status: http.StatusExpectationFailed, Reason: "unsupported expectation"}
)

// StatusOf returns the status for a parse error: the Error's own, else 400.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusBadRequest
}
