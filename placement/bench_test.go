package placement

import (
	"fmt"
	"testing"
)

// BenchmarkPlace measures a placement of 4+2 shards, the work every PUT does
// per segment.
func BenchmarkPlace(b *testing.B) {
	for _, size := range []int{6, 50, 500} {
		r := mustRing(b, equalNodes(size, 3))
		ids := segmentIDs(1, 1024)
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := r.Place(ids[i%len(ids)], 6); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAppendPlace is Place into a reused slice.
func BenchmarkAppendPlace(b *testing.B) {
	for _, size := range []int{6, 50, 500} {
		r := mustRing(b, equalNodes(size, 3))
		ids := segmentIDs(1, 1024)
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]string, 0, 6)
			i := 0
			for b.Loop() {
				var err error
				if dst, err = r.AppendPlace(dst[:0], ids[i%len(ids)], 6); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkPlaceWeighted is Place on a ring of unequal weights.
func BenchmarkPlaceWeighted(b *testing.B) {
	nodes := equalNodes(50, 3)
	for i := range nodes {
		nodes[i].Weight = float64(1 + i%4)
	}
	r := mustRing(b, nodes)
	ids := segmentIDs(1, 1024)
	b.ReportAllocs()
	dst := make([]string, 0, 6)
	i := 0
	for b.Loop() {
		var err error
		if dst, err = r.AppendPlace(dst[:0], ids[i%len(ids)], 6); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFill measures choosing one repair target on 50 nodes.
func BenchmarkFill(b *testing.B) {
	r := mustRing(b, equalNodes(50, 3))
	ids := segmentIDs(1, 1024)
	have := []string{"n00", "n01", "n02", "n03", "n04"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := r.Fill(ids[i%len(ids)], 6, have, []string{"n05"}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkNewRing(b *testing.B) {
	nodes := equalNodes(500, 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewRing(1, nodes); err != nil {
			b.Fatal(err)
		}
	}
}
