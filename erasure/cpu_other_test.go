//go:build !unix

package erasure_test

import "time"

// cpuTime is not measured here; benchmarks then omit per-CPU metrics.
func cpuTime() time.Duration { return 0 }
