package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEstimatePerRank(t *testing.T) {
	code, out, errw := runCLI(t, "estimate", "--model", "llama-2-7b", "--batch", "1", "--seq", "4096", "--precision", "bf16",
		"--checkpointing", "full", "--pp", "4", "--gpu", "h100-80gb")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errw)
	}
	for _, want := range []string{", pp 4", "per rank (formula breakdown", "pp stage 0 (first)", "pp stage 3 (last)", "host RAM"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errw = runCLI(t, "estimate", "--model", "gpt2", "--offload", "optimizer", "--zero", "1", "--dp", "8", "--engine", "deepspeed", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errw)
	}
	var rep struct {
		Workload map[string]any `json:"workload"`
		Ranks    []struct {
			Ranks     string `json:"ranks"`
			Estimates []struct {
				Host *struct{ Bytes uint64 } `json:"host"`
			} `json:"estimates"`
		} `json:"ranks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Workload["offload"] != "optimizer" || rep.Workload["engine"] != "deepspeed" || len(rep.Ranks) != 1 ||
		rep.Ranks[0].Estimates[0].Host == nil || rep.Ranks[0].Estimates[0].Host.Bytes == 0 {
		t.Errorf("offload JSON: %s", out)
	}
	for _, c := range []struct{ args, want string }{
		{"--pp 5", "--pp 5"},
		{"--cp 2", "--cp 2: needs flash attention"},
		{"--offload disk", `--offload "disk"`},
		{"--engine ddp --zero 2", `--engine "ddp"`},
		{"--zero 3 --engine fsdp --fsdp-mp bf32", `--fsdp-mp "bf32"`},
		{"--zero 3 --engine fsdp --fsdp-mp bf16 --precision bf16-master", `--fsdp-mp "bf16": needs precision fp32`},
	} {
		code, _, errw := runCLI(t, append([]string{"estimate", "--model", "gpt2"}, strings.Fields(c.args)...)...)
		if code == 0 || !strings.Contains(errw, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", c.args, code, errw, c.want)
		}
	}
}
