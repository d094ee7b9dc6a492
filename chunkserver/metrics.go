package chunkserver

import (
	"context"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns the chunk server's own metrics, read at each scrape:
// per-disk space and shard counts, flush batches, and scrub progress.
// Request counts and bytes moved are the HTTP metrics' (op "PUT shard",
// "GET shard", ...; see Op).
func (s *Server) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Server }

var (
	diskLabels     = []string{"disk", "path"}
	descCapacity   = prometheus.NewDesc("talus_chunk_disk_capacity_bytes", "Disk capacity (capped by a configured limit).", diskLabels, nil)
	descFree       = prometheus.NewDesc("talus_chunk_disk_free_bytes", "Free bytes on the disk.", diskLabels, nil)
	descUsed       = prometheus.NewDesc("talus_chunk_disk_used_bytes", "Bytes of shard files on the disk.", diskLabels, nil)
	descShards     = prometheus.NewDesc("talus_chunk_disk_shards", "Shard files on the disk.", diskLabels, nil)
	descHealthy    = prometheus.NewDesc("talus_chunk_disk_healthy", "1 if the disk takes new shards.", diskLabels, nil)
	descFsync      = prometheus.NewDesc("talus_chunk_fsync_batches_total", "Group flushes (syncfs) run, each covering every shard write waiting for it.", diskLabels, nil)
	descScrubPass  = prometheus.NewDesc("talus_chunk_scrub_pass", "Number of the scrub pass running or last run.", nil, nil)
	descScrubDone  = prometheus.NewDesc("talus_chunk_scrub_passes_completed", "Number of the last scrub pass that finished.", nil, nil)
	descScrubRun   = prometheus.NewDesc("talus_chunk_scrub_running", "1 while a scrub pass runs.", nil, nil)
	descScrubPassB = prometheus.NewDesc("talus_chunk_scrub_pass_bytes", "Data bytes verified in the current pass.", nil, nil)
	descScrubBytes = prometheus.NewDesc("talus_chunk_scrub_bytes_total", "Data bytes verified by the scrubber.", nil, nil)
	descScrubShard = prometheus.NewDesc("talus_chunk_scrub_shards_total", "Shards verified by the scrubber.", nil, nil)
	descScrubBad   = prometheus.NewDesc("talus_chunk_scrub_corrupt_total", "Corrupt shards found by the scrubber.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCapacity, descFree, descUsed, descShards, descHealthy, descFsync,
		descScrubPass, descScrubDone, descScrubRun, descScrubPassB, descScrubBytes, descScrubShard, descScrubBad} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	st, err := c.s.Status(context.Background())
	if err == nil {
		for i, d := range st.Disks {
			healthy := 0.0
			if d.Healthy {
				healthy = 1
			}
			gauge(descCapacity, float64(d.Capacity), d.ID, d.Path)
			gauge(descFree, float64(d.Free), d.ID, d.Path)
			gauge(descUsed, float64(d.Used), d.ID, d.Path)
			gauge(descShards, float64(d.Shards), d.ID, d.Path)
			gauge(descHealthy, healthy, d.ID, d.Path)
			counter(descFsync, float64(c.s.disks[i].durable.batches.Load()), d.ID, d.Path)
		}
	}
	sc := c.s.ScrubStatus()
	running := 0.0
	if sc.Running {
		running = 1
	}
	gauge(descScrubPass, float64(sc.Pass))
	gauge(descScrubDone, float64(sc.Completed))
	gauge(descScrubRun, running)
	gauge(descScrubPassB, float64(sc.Bytes))
	counter(descScrubBytes, float64(sc.TotalBytes))
	counter(descScrubShard, float64(sc.TotalShards))
	counter(descScrubBad, float64(sc.TotalCorrupt))
}

// Op names a chunk-server request for metrics: its method and the kind of
// resource ("PUT shard", "GET status"), never the shard id, which would
// make a series per shard.
func Op(r *http.Request) string {
	p := r.URL.Path
	if strings.HasPrefix(p, "/v1/shards/") {
		return r.Method + " shard"
	}
	switch p {
	case "/v1/inventory", "/v1/status", "/v1/scrub", "/healthz", "/readyz":
		return r.Method + " " + strings.TrimPrefix(p, "/v1/")
	}
	return "other"
}
