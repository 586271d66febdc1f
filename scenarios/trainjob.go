package scenarios

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/memval/memval/analytic/model"
)

// PythonEnv names the environment variable that chooses the Python
// interpreter (one with PyTorch) the training script runs under.
const PythonEnv = "MEMVAL_PYTHON"

// ScriptName is the file name TrainCommand gives the embedded training
// script beside a job file.
const ScriptName = "memval-train.py"

// trainScript is scenarios/train.py, compiled in so that the memval binary
// is self-contained on a GPU host.
//
//go:embed train.py
var trainScript []byte

// TrainScript returns the training script's source (scenarios/train.py as
// it was when memval was built).
func TrainScript() []byte { return append([]byte(nil), trainScript...) }

// TrainJob is what scenarios/train.py reads (--job FILE): the model, the
// workload and how to run it. Its JSON names are the script's.
type TrainJob struct {
	Arch model.Arch `json:"arch"`
	// Layer is what one layer of Arch's family computes (the family
	// table's model.Layer), from which the script builds the model. WriteJob
	// fills it for the families whose layer the table describes exactly
	// (model.Family.Measured) and the script's hand-built program computes
	// (model.Layer.HandBuilt), and leaves it out for the others, which the
	// script then builds with transformers only.
	Layer        *model.Layer   `json:"layer,omitempty"`
	Workload     model.Workload `json:"workload"`
	Steps        int            `json:"steps"`         // measured steps after the warmup
	Warmup       int            `json:"warmup"`        // steps run before the measured ones
	Seed         int            `json:"seed"`          // torch.manual_seed and the token generator
	Device       string         `json:"device"`        // auto (cuda if available), cuda or cpu
	MeasureSaved bool           `json:"measure_saved"` // report the bytes autograd saves for backward each step
	// ParamsOnly builds the model on PyTorch's meta device, prints its
	// parameter count and trains nothing (no memory is allocated).
	ParamsOnly bool `json:"params_only,omitempty"`

	// Impl is how the script builds the model: "transformers" (the
	// library's class from HFConfig or ConfigPath), "hand" (written out from
	// Layer) or "auto" (empty: transformers when it is importable and can
	// run the job, else hand). See scenarios/train.py.
	Impl string `json:"impl,omitempty"`
	// HFConfig is the config.json the transformers path builds from;
	// WriteJob fills it from Arch (HFConfig) unless ConfigPath is set.
	HFConfig map[string]any `json:"hf_config,omitempty"`
	// ConfigPath is a config.json file to build from instead of HFConfig.
	ConfigPath string `json:"config_path,omitempty"`
	// OptimImpl is torch.optim's implementation: "" or default (torch's
	// choice), foreach, fused or for-loop.
	OptimImpl string `json:"optim_impl,omitempty"`
	// ListSaved asks for the saved tensors of the first step, each with the
	// autograd node that saved it (result field saved_tensors).
	ListSaved bool `json:"list_saved,omitempty"`
	// LoRARoles are the roles (model.LinearModule.Role) of the linear
	// layers the workload's LoRA adapts, for the hand-built model;
	// withDefaults fills them from model.LoRATargets. The transformers path
	// gives PEFT the workload's lora_targets as they are.
	LoRARoles []string `json:"lora_roles,omitempty"`
}

// Validate checks the fields the script needs before a process is started.
func (j TrainJob) Validate() error {
	switch j.Device {
	case "", "auto", "cuda", "cpu":
	default:
		return fmt.Errorf("train job: device %q: use auto, cuda or cpu", j.Device)
	}
	switch j.Impl {
	case "", "auto", "transformers", "hand":
	default:
		return fmt.Errorf("train job: impl %q: use auto, transformers or hand", j.Impl)
	}
	switch j.OptimImpl {
	case "", "default", "foreach", "fused", "for-loop":
	default:
		return fmt.Errorf("train job: optim_impl %q: use default, foreach, fused or for-loop", j.OptimImpl)
	}
	if j.Steps < 0 || j.Warmup < 0 {
		return fmt.Errorf("train job: steps %d and warmup %d must not be negative", j.Steps, j.Warmup)
	}
	if j.Arch.Family == "" {
		return errors.New("train job: arch.family is empty; give the model family (e.g. gpt2)")
	}
	if w := j.Workload; w.Distributed() || w.DP > 1 || w.TP > 1 || w.ZeRO > 0 || w.SP {
		return fmt.Errorf("train job: %w: train.py runs one process on one GPU, not zero/dp/tp/pp/cp/offload/engine: "+
			"estimate it with memval estimate, or profile the real launcher (memval profile -- torchrun ...)", ErrInvalid)
	}
	if j.Workload.Precision == model.BF16Master {
		// train.py refuses it too (exit 2); saying so here stops a run
		// before the profiler starts.
		return fmt.Errorf("train job: %w: precision %s is not supported by train.py (it keeps no fp32 master weights): "+
			"measure it with --device sim, or use bf16-pure or bf16 against PyTorch", ErrInvalid, j.Workload.Precision)
	}
	return nil
}

// withDefaults is j as written for the script: device auto, the family's
// layer where the table describes it exactly, and its config.json (for the
// transformers path) where the family has one.
func (j TrainJob) withDefaults() TrainJob {
	if j.Device == "" {
		j.Device = "auto"
	}
	if fam, ok := model.FamilyOf(j.Arch.Family); ok && fam.Measured && fam.Layer.HandBuilt() && j.Layer == nil {
		j.Layer = fam.Layer
	}
	j.LoRARoles = loraRoles(j.Arch, j.Workload, j.LoRARoles)
	if j.HFConfig == nil && j.ConfigPath == "" && j.Impl != "hand" {
		if m, err := HFConfig(j.Arch, j.Workload); err == nil {
			j.HFConfig = m
		}
	}
	return j
}

// WriteJob writes j as JSON to path (created or truncated, mode 0644).
func WriteJob(path string, j TrainJob) error {
	if err := j.Validate(); err != nil {
		return err
	}
	j = j.withDefaults()
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding train job: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing train job: %w", err)
	}
	return nil
}

// WriteJobs writes several jobs as one JSON list, for train.py --jobs.
func WriteJobs(path string, jobs []TrainJob) error {
	for i := range jobs {
		if err := jobs[i].Validate(); err != nil {
			return fmt.Errorf("job %d: %w", i, err)
		}
		jobs[i] = jobs[i].withDefaults()
	}
	data, err := json.MarshalIndent(jobs, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding train jobs: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing train jobs: %w", err)
	}
	return nil
}

// Python returns the interpreter to run the script with: $MEMVAL_PYTHON, or
// "python3" when it is unset or empty.
func Python() string {
	if p := os.Getenv(PythonEnv); p != "" {
		return p
	}
	return "python3"
}

// ScriptPath finds the repository's scenarios/train.py: under the working
// directory or one of its parents, or beside the executable (and its
// parent, for bin/memval). It errors when none exists; TrainCommand does
// not need it (the script is embedded).
func ScriptPath() (string, error) {
	var dirs []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		dirs = append(dirs, d, filepath.Dir(d))
	}
	for _, d := range dirs {
		for _, p := range []string{filepath.Join(d, "scenarios", "train.py"), filepath.Join(d, "train.py")} {
			if filepath.Base(d) != "scenarios" && filepath.Base(p) == "train.py" && filepath.Dir(p) == d {
				continue // a bare train.py counts only inside a scenarios folder
			}
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	return "", errors.New("scenarios/train.py not found under the working directory or beside the executable; run from the memval repository or use TrainCommand, which writes the embedded copy")
}

// TrainCommand returns the argv that runs the training script on jobPath:
// Python() and the embedded script, written as ScriptName beside the job
// file (so a run folder keeps the exact script it ran), then --job jobPath.
func TrainCommand(jobPath string) ([]string, error) {
	return trainCommand("--job", jobPath)
}

// TrainJobsCommand is TrainCommand for a file of several jobs (WriteJobs).
func TrainJobsCommand(jobsPath string) ([]string, error) {
	return trainCommand("--jobs", jobsPath)
}

func trainCommand(flag, path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("train command: empty job path")
	}
	script := filepath.Join(filepath.Dir(path), ScriptName)
	if err := os.WriteFile(script, trainScript, 0o644); err != nil {
		return nil, fmt.Errorf("writing the training script: %w", err)
	}
	return []string{Python(), script, flag, path}, nil
}
