package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/internal/dev"
)

// selfCheck builds a body that proves its own integrity: a header with the
// writer, sequence number and length, the payload, and a SHA-256 of both.
// A torn object — bytes of two writes mixed — cannot pass check.
func selfCheck(writer, seq, size int) []byte {
	b := randBytes(uint64(writer*100000+seq), size)
	binary.BigEndian.PutUint32(b[0:], uint32(writer))
	binary.BigEndian.PutUint32(b[4:], uint32(seq))
	h := sha256.Sum256(b[:size-32])
	copy(b[size-32:], h[:])
	return b
}

func check(b []byte) (writer, seq int, ok bool) {
	if len(b) < 40 {
		return 0, 0, false
	}
	h := sha256.Sum256(b[:len(b)-32])
	return int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:])), bytes.Equal(h[:], b[len(b)-32:])
}

type version struct {
	writer, seq int
	start, end  time.Time
}

// TestConcurrentWritersAndReaders runs 32 writers and readers over a few
// shared keys: no reader may see a torn object, and after the dust settles
// each key holds a write that no other write strictly followed.
func TestConcurrentWritersAndReaders(t *testing.T) {
	_, cl := startCluster(t, dev.Options{})
	mustBucket(t, cl, "race")
	ctx := context.Background()
	const keys, writers, readers, rounds = 4, 16, 16, 6
	sizes := []int{1 << 10, 100 << 10, 1<<20 + 17}
	var mu sync.Mutex
	versions := map[string][]version{}
	var wg sync.WaitGroup
	errc := make(chan error, writers+readers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range rounds {
				key := fmt.Sprintf("k%d", (w+s)%keys)
				body := selfCheck(w, s, sizes[(w+s)%len(sizes)])
				start := time.Now()
				if _, err := cl.Put(ctx, "race", key, bytes.NewReader(body), int64(len(body)), client.PutOptions{}); err != nil {
					errc <- fmt.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				versions[key] = append(versions[key], version{w, s, start, time.Now()})
				mu.Unlock()
			}
		}()
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds * 2 {
				key := fmt.Sprintf("k%d", (r+i)%keys)
				rd, err := cl.Get(ctx, "race", key, 0, -1)
				if err != nil {
					continue // not written yet
				}
				b, err := io.ReadAll(rd)
				rd.Close()
				if err != nil {
					errc <- fmt.Errorf("reader %d: read %s: %v", r, key, err)
					return
				}
				if _, _, ok := check(b); !ok {
					errc <- fmt.Errorf("reader %d: %s is torn (%d bytes)", r, key, len(b))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for key, vs := range versions {
		b, err := get(cl, "race", key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		w, s, ok := check(b)
		if !ok {
			t.Fatalf("%s is torn", key)
		}
		var final *version
		for i := range vs {
			if vs[i].writer == w && vs[i].seq == s {
				final = &vs[i]
			}
		}
		if final == nil {
			t.Fatalf("%s holds writer %d seq %d, which was never acknowledged", key, w, s)
		}
		for _, v := range vs {
			if v.start.After(final.end) {
				t.Fatalf("%s holds writer %d seq %d although writer %d seq %d started after it was acknowledged", key, w, s, v.writer, v.seq)
			}
		}
	}
}
