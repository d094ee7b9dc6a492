package multimd5

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// Concurrent streams of every length around the block and buffer sizes,
// written in uneven pieces, get crypto/md5's digest, on the lanes and off,
// with more streams than there are lanes.
func TestMatchesCryptoMD5(t *testing.T) {
	p := New()
	sizes := []int{0, 1, 55, 56, 63, 64, 65, 32<<10 - 1, 32 << 10, 32<<10 + 1, 1 << 20, 3<<20 + 7}
	for round := range 3 {
		var wg sync.WaitGroup
		all := slices.Concat(sizes, sizes, sizes)
		errs := make(chan error, len(all))
		for i, size := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(i)))
				data := make([]byte, size)
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				h := p.New()
				defer h.Close()
				for rest := data; len(rest) > 0; {
					n := min(len(rest), 1+rng.IntN(100<<10))
					if _, err := h.Write(rest[:n]); err != nil {
						errs <- err
						return
					}
					rest = rest[n:]
				}
				want := md5.Sum(data)
				if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
					errs <- fmt.Errorf("%d bytes: digest %x, want %x", size, got, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active != 0 || p.lanes != 0 {
		t.Errorf("after every hash closed: %d active, %d on lanes", p.active, p.lanes)
	}
}

// The lanes' server goes once the last lane hash has been idle long enough,
// and a new crowd of streams starts another.
func TestServerStopsWhenIdle(t *testing.T) {
	p := New()
	open := func(n int) []Hash {
		hs := make([]Hash, n)
		for i := range hs {
			hs[i] = p.New()
		}
		return hs
	}
	hs := open(minLanes)
	if _, ok := hs[minLanes-1].(*laneHash); !ok {
		t.Fatalf("hash %d of %d concurrent is not a lane hash", minLanes, minLanes)
	}
	if _, ok := hs[0].(*asyncHash); !ok {
		t.Fatal("first hash is not an asyncHash")
	}
	for _, h := range hs {
		h.Close()
		h.Close() // a second Close is harmless
	}
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	if idle == nil {
		t.Fatal("no idle timer after the last lane hash closed")
	}
	// Fire it now rather than waiting idleClose.
	idle.Reset(0)
	for i := 0; ; i++ {
		p.mu.Lock()
		stopped := p.srv == nil
		p.mu.Unlock()
		if stopped {
			break
		}
		if i == 5000 {
			t.Fatal("the lanes' server still runs 5s after its idle timer fired")
		}
		time.Sleep(time.Millisecond)
	}
	hs = open(minLanes)
	h := hs[minLanes-1]
	h.Write([]byte("abc"))
	if got, want := fmt.Sprintf("%x", h.Sum(nil)), fmt.Sprintf("%x", md5.Sum([]byte("abc"))); got != want {
		t.Errorf("after a restart: %s, want %s", got, want)
	}
	for _, h := range hs {
		h.Close()
	}
}

// Sum in the middle of a stream leaves the hash going, and Reset starts it
// over, whether or not the hashing goroutine has started.
func TestSumMidStreamAndReset(t *testing.T) {
	p := New()
	for _, size := range []int{100, asyncChunk*asyncDepth*3 + 17} {
		data := bytes.Repeat([]byte("talus"), size/5+1)[:size]
		h := p.New()
		h.Write(data[:size/2])
		if got, want := h.Sum(nil), md5.Sum(data[:size/2]); !bytes.Equal(got, want[:]) {
			t.Errorf("%d bytes: mid-stream digest %x, want %x", size, got, want)
		}
		h.Write(data[size/2:])
		if got, want := h.Sum(nil), md5.Sum(data); !bytes.Equal(got, want[:]) {
			t.Errorf("%d bytes: digest after mid-stream Sum %x, want %x", size, got, want)
		}
		h.Reset()
		h.Write(data[:7])
		if got, want := h.Sum(nil), md5.Sum(data[:7]); !bytes.Equal(got, want[:]) {
			t.Errorf("%d bytes: digest after Reset %x, want %x", size, got, want)
		}
		h.Close()
	}
}
