package model

import (
	"fmt"
	"strings"
)

// FSDP mixed precision (Workload.FSDPMixed): torch FSDP's
// MixedPrecision(param_dtype, reduce_dtype) (FSDP1,
// torch/distributed/fsdp/api.py and _flat_param.py) or fully_shard's
// MixedPrecisionPolicy (FSDP2, torch/distributed/fsdp/_fully_shard/
// _fsdp_api.py and _fsdp_param.py). The value is PARAM[:REDUCE]: the
// dtype the unsharded parameters are gathered and computed in, and the
// dtype gradients are reduce-scattered in (REDUCE omitted: the param
// dtype, as both FSDP versions do when reduce_dtype is None).
//
// The rules memval follows (derived from the libraries' code; measured on
// the CPU for FSDP2 where marked, scenarios/truth_fsdp_mp_test.go): the
// sharded parameters stay in the dtype the model was built in (fp32,
// measured), and so do the sharded gradients (measured) (FSDP1 casts the
// reduced gradient back to the parameter dtype unless
// keep_low_precision_grads; FSDP2's foreach_reduce to the sharded
// parameter's dtype) and the optimizer states, which step on the fp32 shard:
// there is no separate master copy (measured). The param_dtype copy of a
// unit exists only while the unit is gathered (freed after forward with
// reshard_after_forward, i.e. zero 3; kept to the end of backward with zero
// 2; both measured after the forward). The layers compute as a pure
// param_dtype model (measured). A model loaded in bf16 (precision bf16-pure)
// is upcast to fp32 by accelerate when mixed precision is on
// (accelerate/accelerator.py: FSDP1's flat parameters, FSDP2's model before
// fully_shard), so its states are those of an fp32 model.
type fsdpMP struct{ param, reduce string }

// fsdpDtypes are the dtypes FSDPMixed names, with their bytes.
var fsdpDtypes = map[string]float64{"bf16": 2, "fp16": 2, "fp32": 4}

// FSDPMixedChoices lists example FSDPMixed values for help texts.
func FSDPMixedChoices() []string { return []string{"bf16", "fp16", "bf16:fp32", "fp16:fp32"} }

// ParseFSDPMixed splits an FSDPMixed value into the bytes per element of
// its param dtype and its reduce dtype; "" gives 0, 0.
func ParseFSDPMixed(v string) (param, reduce float64, err error) {
	if v == "" {
		return 0, 0, nil
	}
	p, r, found := strings.Cut(v, ":")
	if !found {
		r = p
	}
	pb, okP := fsdpDtypes[p]
	rb, okR := fsdpDtypes[r]
	if !okP || p == "fp32" || !okR || (found && r == "") {
		return 0, 0, &FieldError{Field: "fsdp_mp", Value: fmt.Sprintf("%q", v),
			Reason: "must be PARAM[:REDUCE] with PARAM bf16 or fp16 and REDUCE bf16, fp16 or fp32 (e.g. bf16 or bf16:fp32)"}
	}
	return pb, rb, nil
}

// checkFSDPMixed checks FSDPMixed against the rest of the workload.
func (w *Workload) checkFSDPMixed() error {
	if w.FSDPMixed == "" {
		return nil
	}
	if _, _, err := ParseFSDPMixed(w.FSDPMixed); err != nil {
		return err
	}
	v := fmt.Sprintf("%q", w.FSDPMixed)
	switch {
	case w.Engine != FSDP && w.Engine != FSDP2:
		return &FieldError{Field: "fsdp_mp", Value: v, Reason: "is FSDP's MixedPrecision: give engine fsdp or fsdp2"}
	case w.Precision != FP32 && w.Precision != BF16Pure && w.Precision != "":
		return &FieldError{Field: "fsdp_mp", Value: v, Reason: fmt.Sprintf("needs precision fp32 (fp32 shards) or bf16-pure (a bf16-loaded model accelerate upcasts), not %s", w.Precision)}
	case w.LoRA() || w.Weights != "":
		return &FieldError{Field: "fsdp_mp", Value: v, Reason: "models full training: drop lora_rank and weights"}
	}
	return nil
}
