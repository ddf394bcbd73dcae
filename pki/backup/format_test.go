package backup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

func TestWriteReadRoundTrip(t *testing.T) {
	a := sampleArchive(t)
	data := sealArchive(t, a)
	if !bytes.HasPrefix(data, []byte("drawbridge-backup\n")) {
		t.Errorf("archive starts with %q, want the magic", data[:20])
	}
	got, err := Read(bytes.NewReader(data), []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("read back (-wrote +read):\n%s", diff)
	}
	// Sealing twice gives different files: fresh salt and nonce each time.
	if bytes.Equal(data, sealArchive(t, a)) {
		t.Error("two archives of the same content are identical; salt or nonce is not random")
	}
}

func TestNoPlaintextInArchive(t *testing.T) {
	a := sampleArchive(t)
	data := sealArchive(t, a)
	for _, needle := range []string{"BEGIN CERTIFICATE", "keyring", "manifest.json", "listeners"} {
		if bytes.Contains(data, []byte(needle)) {
			t.Errorf("archive holds %q in clear", needle)
		}
	}
}

// smallArchive is a real archive of a few files, small enough to flip
// every byte of in turn.
func smallArchive(t *testing.T) []byte {
	t.Helper()
	return sealArchive(t, &Archive{
		Manifest: Manifest{ConfigName: "drawbridge.yaml"},
		State:    []File{{Name: "drawbridge/keyring.json", Data: []byte("{}")}, {Name: "drawbridge/ca/state.json", Data: []byte("{}")}},
		Config:   []byte("listeners: {}\n"),
	})
}

// TestFlippedByteRefused flips one bit of each byte of an archive in turn
// (a different bit per position): every change is refused.
func TestFlippedByteRefused(t *testing.T) {
	data := smallArchive(t)
	pass := []byte(testPassphrase)
	for i := range data {
		bit := byte(1) << (i % 8)
		mutated := bytes.Clone(data)
		mutated[i] ^= bit
		// A flip in the argon2id memory field may ask for up to 1 GiB,
		// which Read would spend; the test caps it at 1 MiB.
		a, err := read(bytes.NewReader(mutated), pass, 1024)
		if err == nil {
			t.Fatalf("byte %d ^ %#x: archive accepted (%d files)", i, bit, len(a.State))
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotArchive) && !errors.Is(err, store.ErrWrongPassphrase) &&
			!strings.Contains(err.Error(), "not supported") {
			t.Fatalf("byte %d ^ %#x: unexpected error %v", i, bit, err)
		}
		if i >= headerSize && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d (ciphertext) ^ %#x: got %v, want ErrCorrupt", i, bit, err)
		}
	}
}

func TestTruncatedRefused(t *testing.T) {
	data := smallArchive(t)
	for n := range len(data) {
		_, err := Read(bytes.NewReader(data[:n]), []byte(testPassphrase))
		switch {
		case n == 0 && !errors.Is(err, ErrNotArchive):
			t.Fatalf("empty file: got %v, want ErrNotArchive", err)
		case n > 0 && !errors.Is(err, ErrCorrupt):
			t.Fatalf("truncated to %d of %d bytes: got %v, want ErrCorrupt", n, len(data), err)
		}
	}
	_, err := Read(bytes.NewReader(data[:len(data)-1]), []byte(testPassphrase))
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("one byte short: %v, want it to say truncated", err)
	}
	_, err = Read(bytes.NewReader(append(bytes.Clone(data), 0)), []byte(testPassphrase))
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("one byte appended: got %v, want ErrCorrupt", err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	data := sealArchive(t, sampleArchive(t))
	_, err := Read(bytes.NewReader(data), []byte("another passphrase, long enough"))
	if !errors.Is(err, store.ErrWrongPassphrase) {
		t.Fatalf("got %v, want ErrWrongPassphrase", err)
	}
	msg := explain(err).Error()
	for _, want := range []string{"wrong passphrase", "passphrase file that was in use when the backup was made", "nothing was written"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestNotAnArchive(t *testing.T) {
	for name, in := range map[string]string{
		"yaml":       "listeners:\n  edge: {}\n",
		"empty":      "",
		"other tool": "drawbridge-sealed-v1\nxxxxxxxx",
	} {
		if _, err := Read(strings.NewReader(in), []byte(testPassphrase)); !errors.Is(err, ErrNotArchive) {
			t.Errorf("%s: got %v, want ErrNotArchive", name, err)
		}
	}
}

// failAfterHeader fails the test if more than the header is read.
type failAfterHeader struct {
	t    *testing.T
	data []byte
	off  int
}

func (r *failAfterHeader) Read(p []byte) (int, error) {
	if r.off >= headerSize {
		r.t.Fatal("read past the header of an archive the header alone should refuse")
	}
	n := copy(p, r.data[r.off:headerSize])
	r.off += n
	return n, nil
}

// TestHeaderLimitsBeforeAllocation: a header asking for an absurd size or
// key derivation is refused from the header alone.
func TestHeaderLimitsBeforeAllocation(t *testing.T) {
	valid := sealArchive(t, sampleArchive(t))[:headerSize]
	lengthAt := headerSize - 8
	tests := []struct {
		name string
		edit func(h []byte)
	}{
		{"length beyond MaxSize", func(h []byte) { binary.BigEndian.PutUint64(h[lengthAt:], MaxSize) }},
		{"length 2^64-1", func(h []byte) { binary.BigEndian.PutUint64(h[lengthAt:], ^uint64(0)) }},
		{"length below the tag", func(h []byte) { binary.BigEndian.PutUint64(h[lengthAt:], 15) }},
		{"argon2 memory 4 TiB", func(h []byte) { binary.BigEndian.PutUint32(h[len(magic)+8:], ^uint32(0)) }},
		{"argon2 passes 2^32-1", func(h []byte) { binary.BigEndian.PutUint32(h[len(magic)+4:], ^uint32(0)) }},
		{"argon2 zero threads", func(h []byte) { h[len(magic)+2] = 0 }},
		{"unknown kdf", func(h []byte) { h[len(magic)+1] = 2 }},
		{"reserved byte set", func(h []byte) { h[len(magic)+3] = 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := bytes.Clone(valid)
			tc.edit(h)
			_, err := Read(&failAfterHeader{t: t, data: h}, []byte(testPassphrase))
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("got %v, want ErrCorrupt", err)
			}
		})
	}
	h := bytes.Clone(valid)
	h[len(magic)] = 2
	if _, err := Read(&failAfterHeader{t: t, data: h}, []byte(testPassphrase)); err == nil || !strings.Contains(err.Error(), "version 2 is not supported") {
		t.Errorf("version 2: got %v", err)
	}
}

// TestLyingLengthCostsOnlyWhatArrives: a header declaring the maximum
// length over a short body is refused as truncated.
func TestLyingLengthCostsOnlyWhatArrives(t *testing.T) {
	data := sealArchive(t, sampleArchive(t))
	h := bytes.Clone(data)
	binary.BigEndian.PutUint64(h[headerSize-8:], MaxSize-uint64(headerSize))
	_, err := Read(io.MultiReader(bytes.NewReader(h)), []byte(testPassphrase))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("got %v, want truncated", err)
	}
}

func TestWriteRefusesTooLarge(t *testing.T) {
	a := &Archive{State: []File{{Name: "drawbridge/keyring.json", Data: make([]byte, MaxSize)}}}
	if err := Write(io.Discard, a, []byte(testPassphrase), testKDF); err == nil {
		t.Fatal("a state larger than MaxSize was written")
	}
}
