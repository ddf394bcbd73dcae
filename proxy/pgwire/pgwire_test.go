package pgwire

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

func TestStartupRoundTrip(t *testing.T) {
	msg := StartupMessage(map[string]string{"user": "app", "database": "todo"}, "user", "database")
	got, err := ReadStartup(bytes.NewReader(append(SSLRequest(), msg...)))
	if err != nil || got.Code != SSLRequestCode || len(got.Raw) != 8 {
		t.Fatalf("first packet %+v, %v; want an 8-byte SSLRequest", got, err)
	}
	r := bytes.NewReader(append(SSLRequest(), msg...))
	_, _ = ReadStartup(r)
	got, err = ReadStartup(r)
	if err != nil || got.Code != ProtocolVersion3 || !bytes.Equal(got.Raw, msg) {
		t.Fatalf("second packet %+v, %v; want the StartupMessage unchanged", got, err)
	}
}

func TestReadStartupRejectsGarbage(t *testing.T) {
	for _, in := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"), // length 0x47455420 is far too long
		{0, 0, 0, 4, 0, 0, 0, 0},         // length shorter than the header
	} {
		if _, err := ReadStartup(bytes.NewReader(in)); !errors.Is(err, ErrBadStartup) {
			t.Errorf("ReadStartup(%q) = %v, want ErrBadStartup", in, err)
		}
	}
}

func TestErrorRoundTrip(t *testing.T) {
	var b bytes.Buffer
	want := &Error{Severity: "FATAL", Code: InvalidAuthorizationSpecification, Message: "TLS is required", Hint: "use sslmode=verify-full"}
	if err := WriteError(&b, want); err != nil {
		t.Fatal(err)
	}
	got, typ, err := ReadError(bufio.NewReader(&b))
	if err != nil || typ != 'E' || *got != *want {
		t.Fatalf("ReadError = %+v %c %v, want %+v", got, typ, err, want)
	}
}

func FuzzReadStartup(f *testing.F) {
	f.Add(SSLRequest())
	f.Add(StartupMessage(map[string]string{"user": "u"}, "user"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ReadStartup(bytes.NewReader(in))
		if err == nil && (len(s.Raw) < 8 || len(s.Raw) > maxStartupLen) {
			t.Fatalf("accepted a packet of %d bytes", len(s.Raw))
		}
	})
}
