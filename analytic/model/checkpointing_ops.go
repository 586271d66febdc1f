package model

import (
	"fmt"
	"strings"
)

// OpsCheckpointingPrefix starts a per-op selective activation
// checkpointing policy, "ops:POLICY": every layer runs under
// torch.utils.checkpoint.checkpoint(use_reentrant=False) with the context
// of torch.utils.checkpoint.create_selective_checkpoint_contexts(policy),
// so that each layer keeps its input and the outputs of the ops the policy
// saves, and recomputes the rest in backward.
const OpsCheckpointingPrefix = "ops:"

// TorchtitanOpsPolicy is torchtitan's selective_ac_option "op"
// (torchtitan v0.2.2, torchtitan/distributed/activation_checkpoint.py
// _apply_op_sac, with the save list _op_sac_save_list of
// torchtitan/models/llama3/infra/parallelize.py): the outputs of
// aten.mm, of the CUDA SDPA kernels (flash, efficient, cuDNN, math,
// fused-overrideable), of reduce_scatter and aten.max are saved, except
// that of the aten.mm calls of a layer's forward (counted from 1) only the
// odd-numbered are ("recompute every second mm").
const TorchtitanOpsPolicy = "torchtitan"

// OpsPolicies lists the policies "ops:POLICY" names.
func OpsPolicies() []string { return []string{TorchtitanOpsPolicy} }

// OpsPolicy is POLICY of an "ops:POLICY" checkpointing, "" for the others.
func (c Checkpointing) OpsPolicy() string {
	p, ok := strings.CutPrefix(string(c), OpsCheckpointingPrefix)
	if !ok {
		return ""
	}
	return p
}

// checkOpsCheckpointing returns a *FieldError naming field unless c is
// "ops:" and one of OpsPolicies.
func checkOpsCheckpointing(field string, c Checkpointing) error {
	p := c.OpsPolicy()
	for _, v := range OpsPolicies() {
		if p == v {
			return nil
		}
	}
	return &FieldError{Field: field, Value: fmt.Sprintf("%q", c),
		Reason: "ops:POLICY names a per-op selective checkpointing policy: use " + OpsCheckpointingPrefix + strings.Join(OpsPolicies(), ", "+OpsCheckpointingPrefix)}
}
