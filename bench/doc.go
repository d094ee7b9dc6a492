// Package bench is the load generator behind `talus bench`: it runs a
// workload (put, get, mixed, list, delete) against a Target — any S3
// endpoint, or a talus cluster through the native client — for a duration or
// a count, and measures throughput, latency percentiles, time to first byte
// and errors.
//
// A run has phases: prefill (objects for the workloads that read or delete
// them), warm-up (run but not measured), the measurement, and clean-up (every
// object the run wrote, and the bucket if it made one). Each worker keeps its
// own latency Histograms and counters, so the hot path takes no locks; they
// are merged into a Result at the end, and a sampler reads the workers'
// atomic counters once a second for the progress reports and the timeline.
//
// Run takes everything it needs in a Config and returns a self-contained
// Result (JSON-ready, with the Histograms kept for charts), so that a
// program comparing stores runs the same Config against two Targets and
// sets the Results side by side.
package bench
