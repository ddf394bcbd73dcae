package pgwire

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"
)

func typed(typ byte, body ...byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{typ}, uint32(len(body)+4)), body...) //nolint:gosec // test sizes
}

// TestFramerFindsMessagesInAnyChunking feeds one frontend stream (startup,
// then typed messages, one with an empty body) whole, byte by byte and in
// chunks of 3, and gets the same messages each time.
func TestFramerFindsMessagesInAnyChunking(t *testing.T) {
	var stream []byte
	stream = append(stream, StartupMessage(map[string]string{"user": "todo"}, "user")...)
	stream = append(stream, typed('Q', []byte("SELECT 1\x00")...)...)
	stream = append(stream, typed('S')...)
	stream = append(stream, typed('Z', 'I')...)
	want := []string{"0:0", "Q:S", "S:0", "Z:I"}
	for _, size := range []int{len(stream), 1, 3} {
		f := NewFramer(true)
		var got []string
		for b := stream; len(b) > 0; {
			n := min(size, len(b))
			f.Feed(b[:n], func(typ, first byte) { got = append(got, fmt.Sprintf("%c:%c", max(typ, '0'), max(first, '0'))) })
			b = b[n:]
		}
		if !reflect.DeepEqual(got, want) || !f.Between() {
			t.Errorf("chunks of %d: messages %q (between: %v), want %q", size, got, f.Between(), want)
		}
	}
	f := NewFramer(false)
	f.Feed([]byte{'Q', 0, 0, 0, 2}, nil) // a length below 4 is not PostgreSQL
	if !f.Bad() || f.Between() {
		t.Error("a length of 2 was accepted")
	}
}
