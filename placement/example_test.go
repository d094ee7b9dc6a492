package placement_test

import (
	"fmt"

	"github.com/talusfs/talus/placement"
)

func ExampleRing_Place() {
	ring, err := placement.NewRing(1, []placement.Node{
		{ID: "cs1", Zone: "a", Weight: 1}, {ID: "cs2", Zone: "a", Weight: 1}, {ID: "cs3", Zone: "a", Weight: 1},
		{ID: "cs4", Zone: "b", Weight: 1}, {ID: "cs5", Zone: "b", Weight: 1}, {ID: "cs6", Zone: "b", Weight: 1},
		{ID: "cs7", Zone: "c", Weight: 2}, {ID: "cs8", Zone: "c", Weight: 2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// 4+2 shards over three zones: two per zone.
	nodes, err := ring.Place("6f1c0b8e4d2a4f0e9c3b7a5d1e8f2c40", 6)
	fmt.Println(nodes, err)

	// The server holding shard 3 failed: pick a replacement for it that
	// keeps the spread.
	have := append(append([]string{}, nodes[:3]...), nodes[4:]...)
	more, err := ring.Fill("6f1c0b8e4d2a4f0e9c3b7a5d1e8f2c40", 6, have, []string{nodes[3]})
	fmt.Println(more, err)
	// Output:
	// [cs7 cs8 cs2 cs6 cs1 cs4] <nil>
	// [cs5] <nil>
}
