// Package metrics serves a profile's figures while it samples, in the
// Prometheus text format (memval profile --metrics ADDR), so that a fleet's
// monitoring scrapes memval as it scrapes dcgm-exporter.
//
// Metrics (bytes unless said):
//
//	memval_gpu_used_bytes{gpu}                  device used, last reading (NVML used)
//	memval_gpu_peak_used_bytes{gpu}             the most used so far
//	memval_gpu_reserved_bytes{gpu}              driver-reserved, last reading (NVML v2 reserved)
//	memval_gpu_total_bytes{gpu}                 the GPU's memory
//	memval_process_used_bytes{gpu,pid,rank}     a process's use of a GPU, last reading; rank "" when its environment names none
//	memval_process_peak_used_bytes{gpu,pid,rank} its most so far
//	memval_samples_total                        readings taken
//	memval_gaps_total                           readings lost to errors
//
// Every figure is read from the Sampler when scraped.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/memval/memval/profiler"
)

// Source is what the collector reads: a *profiler.Sampler.
type Source interface {
	Live() []profiler.LiveGPU
	Counts() (samples, gaps int)
	Processes() []profiler.RankLive
	LastReserved() []uint64
}

var (
	gpuLabels  = []string{"gpu"}
	procLabels = []string{"gpu", "pid", "rank"}

	descUsed     = prometheus.NewDesc("memval_gpu_used_bytes", "GPU memory used (NVML used) at the last reading.", gpuLabels, nil)
	descPeak     = prometheus.NewDesc("memval_gpu_peak_used_bytes", "The most GPU memory used so far in this profile.", gpuLabels, nil)
	descReserved = prometheus.NewDesc("memval_gpu_reserved_bytes", "GPU memory reserved by the driver (NVML v2 reserved) at the last reading.", gpuLabels, nil)
	descTotal    = prometheus.NewDesc("memval_gpu_total_bytes", "The GPU's memory.", gpuLabels, nil)
	descProc     = prometheus.NewDesc("memval_process_used_bytes", "GPU memory NVML attributes to a process at the last reading; rank from its RANK environment variable.", procLabels, nil)
	descProcPeak = prometheus.NewDesc("memval_process_peak_used_bytes", "The most GPU memory a process held so far.", procLabels, nil)
	descSamples  = prometheus.NewDesc("memval_samples_total", "Readings taken.", nil, nil)
	descGaps     = prometheus.NewDesc("memval_gaps_total", "Readings lost to device errors.", nil, nil)
)

// collector reads a Source at each scrape.
type collector struct{ src Source }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUsed, descPeak, descReserved, descTotal, descProc, descProcPeak, descSamples, descGaps} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	res := c.src.LastReserved()
	for i, g := range c.src.Live() {
		l := strconv.Itoa(g.Index)
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(g.Used), l)
		ch <- prometheus.MustNewConstMetric(descPeak, prometheus.GaugeValue, float64(g.Peak), l)
		ch <- prometheus.MustNewConstMetric(descTotal, prometheus.GaugeValue, float64(g.Total), l)
		if i < len(res) {
			ch <- prometheus.MustNewConstMetric(descReserved, prometheus.GaugeValue, float64(res[i]), l)
		}
	}
	for _, p := range c.src.Processes() {
		rank := ""
		if p.Ranked {
			rank = strconv.Itoa(p.Rank)
		}
		labels := []string{strconv.Itoa(p.GPU), strconv.Itoa(p.PID), rank}
		ch <- prometheus.MustNewConstMetric(descProc, prometheus.GaugeValue, float64(p.UsedBytes), labels...)
		ch <- prometheus.MustNewConstMetric(descProcPeak, prometheus.GaugeValue, float64(p.PeakBytes), labels...)
	}
	n, gaps := c.src.Counts()
	ch <- prometheus.MustNewConstMetric(descSamples, prometheus.CounterValue, float64(n))
	ch <- prometheus.MustNewConstMetric(descGaps, prometheus.CounterValue, float64(gaps))
}

// Server serves /metrics for one Source.
type Server struct {
	ln  net.Listener
	srv *http.Server
	src chan Source
}

// Listen binds addr (host:port; ":0" picks a port) at once, so that a bad
// address is an error before the profile starts. Serving starts with
// Serve.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	return &Server{ln: ln}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves src's metrics at /metrics in the background until Close.
func (s *Server) Serve(src Source) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(s.ln) //nolint:errcheck // ends with ErrServerClosed at Close
}

// Close stops serving (waiting up to a second for scrapes in flight).
func (s *Server) Close() error {
	if s.srv == nil {
		return s.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
