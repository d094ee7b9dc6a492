package client

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// What the writer writes arrives whole and in order, whether the reader
// reads in small pieces or takes blocks with WriteTo, and the writer's
// close reaches the reader as io.EOF or its error.
func TestHandoff(t *testing.T) {
	blocks := [][]byte{[]byte("first block"), bytes.Repeat([]byte("x"), 100_000), []byte("last")}
	want := bytes.Join(blocks, nil)
	for _, tc := range []struct {
		name string
		read func(h *handoff) ([]byte, error)
	}{
		{"Read", func(h *handoff) ([]byte, error) {
			var out []byte
			p := make([]byte, 7) // shorter than every block but the last
			for {
				n, err := h.Read(p)
				out = append(out, p[:n]...)
				if err != nil {
					return out, err
				}
			}
		}},
		{"WriteTo", func(h *handoff) ([]byte, error) {
			var out bytes.Buffer
			_, err := h.WriteTo(&out)
			return out.Bytes(), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, end := range []error{nil, errors.New("encoder failed")} {
				h := newHandoff()
				go func() {
					for _, b := range blocks {
						if n, err := h.Write(b); n != len(b) || err != nil {
							t.Errorf("Write of %d bytes: %d, %v", len(b), n, err)
						}
					}
					h.CloseWrite(end)
				}()
				got, err := tc.read(h)
				if tc.name == "Read" && end == nil && err == io.EOF {
					err = nil
				}
				if !errors.Is(err, end) {
					t.Errorf("reader ended with %v, want %v", err, end)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("reader got %d bytes, want the %d written", len(got), len(want))
				}
			}
		})
	}
}

// A reader that gives up unblocks a pending Write and fails later ones with
// its reason, so the erasure writer never hangs on a shard whose upload
// ended.
func TestHandoffReaderGivesUp(t *testing.T) {
	h := newHandoff()
	why := errors.New("server answered 507")
	errc := make(chan error, 1)
	go func() {
		_, err := h.Write([]byte("never read"))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	h.CloseRead(why)
	select {
	case err := <-errc:
		if !errors.Is(err, why) {
			t.Errorf("pending Write: %v, want %v", err, why)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending Write still blocked 5s after CloseRead")
	}
	if _, err := h.Write([]byte("more")); !errors.Is(err, why) {
		t.Errorf("Write after CloseRead: %v, want %v", err, why)
	}
}
