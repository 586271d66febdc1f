package scenarios

import (
	"errors"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func TestSpecDistributed(t *testing.T) {
	s, err := ParseSpec([]byte("name: x\nmodel: llama-2-7b\nbatch: 1\nseq: 1024\nzero: 1\ndp: 8\npp: 4\npp_interleave: 2\nmicrobatches: 8\noffload: optimizer\nengine: deepspeed\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, w, err := s.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := model.Workload{ZeRO: 1, DP: 8, PP: 4, PPInterleave: 2, Microbatches: 8, Offload: model.OffloadOptimizer, Engine: model.DeepSpeed}
	if w.ZeRO != want.ZeRO || w.DP != want.DP || w.PP != want.PP || w.PPInterleave != want.PPInterleave ||
		w.Microbatches != want.Microbatches || w.Offload != want.Offload || w.Engine != want.Engine {
		t.Errorf("workload %+v", w)
	}
	s, err = ParseSpec([]byte("name: x\nmodel: gpt2\nbatch: 1\nseq: 64\nzero: 3\ndp: 8\nengine: fsdp2\nfsdp_mp: bf16:fp32\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, mp, err := s.Resolve(); err != nil || mp.FSDPMixed != "bf16:fp32" || mp.Engine != model.FSDP2 {
		t.Errorf("fsdp_mp spec: %+v, %v", mp, err)
	}
	if err := (TrainJob{Arch: model.Arch{Family: "llama"}, Workload: w}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("train job with pp: %v, want ErrInvalid", err)
	}
	for _, c := range []struct{ yaml, want string }{
		{"engine: nccl", "field engine"},
		{"offload: disk", "field offload"},
		{"zero: 4", "field zero"},
		{"pp: 0", "field pp"},
		{"engine: ddp\nzero: 2", "engine"},
		{"fsdp_mp: bf16\nzero: 3\nengine: deepspeed", "fsdp_mp"},
		{"fsdp_mp: int8\nzero: 3\nengine: fsdp", "fsdp_mp"},
	} {
		s, err := ParseSpec([]byte("name: x\nmodel: gpt2\nbatch: 1\nseq: 64\n"+c.yaml+"\n"), "x.yaml")
		if err == nil {
			_, _, err = s.Resolve()
		}
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an invalid-scenario error naming %s", c.yaml, err, c.want)
		}
	}
}
