package metrics_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/metrics"
	"github.com/memval/memval/profiler/sim"
)

// TestMetricsWhileProfiling serves /metrics on a loopback port during a
// simulated 8-rank profile and scrapes it with real HTTP GETs until every
// rank's process shows (or the profile ends, which fails the test).
func TestMetricsWhileProfiling(t *testing.T) {
	a, err := model.Preset("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := sim.New(sim.Config{Arch: a, Workload: model.Workload{Batch: 1, Seq: 128}, Steps: 20, Ranks: 8, StepDuration: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := metrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "http://" + srv.Addr() + "/metrics"
	runDone := make(chan struct{})
	var (
		wg    sync.WaitGroup
		body  string
		tries int
	)
	scrape := func() {
		defer wg.Done()
		for {
			select {
			case <-runDone:
				return
			default:
			}
			tries++
			resp, err := http.Get(url)
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Rank 7's process and rank 0's peak: the first and the last
			// rank seen, whatever order the sampler met them in.
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `memval_process_used_bytes{gpu="7",pid="31344",rank="7"}`) &&
				strings.Contains(string(b), `memval_process_peak_used_bytes{gpu="0",pid="31337",rank="0"}`) {
				body = string(b)
				return
			}
		}
	}
	_, err = profiler.Run(context.Background(), profiler.RunOptions{Device: dev, OutDir: t.TempDir(), Interval: time.Millisecond, GPU: -1,
		Sampling: func(s *profiler.Sampler) {
			srv.Serve(s)
			wg.Add(1)
			go scrape()
		}})
	close(runDone)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		t.Fatalf("no scrape of %d showed rank 0's and rank 7's processes while profiling", tries)
	}
	for _, want := range []string{
		"# TYPE memval_gpu_used_bytes gauge",
		`memval_gpu_used_bytes{gpu="0"}`,
		`memval_gpu_reserved_bytes{gpu="3"}`,
		`memval_gpu_peak_used_bytes{gpu="7"}`,
		`memval_process_peak_used_bytes{gpu="0",pid="31337",rank="0"}`,
		"# TYPE memval_samples_total counter",
		"memval_gaps_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestListenBadAddress(t *testing.T) {
	if _, err := metrics.Listen("127.0.0.1:notaport"); err == nil || !strings.Contains(err.Error(), "--metrics") {
		t.Errorf("bad address: %v", err)
	}
}
