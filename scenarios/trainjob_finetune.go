package scenarios

import "github.com/memval/memval/analytic/model"

// loraRoles returns the roles of the linear layers w's LoRA adapts on a
// (given, when the job has them already); nil without LoRA or when the
// targets are bad (train.py then refuses the job by its workload).
func loraRoles(a model.Arch, w model.Workload, given []string) []string {
	if given != nil || !w.LoRA() {
		return given
	}
	if err := a.Normalize(); err != nil {
		return nil
	}
	ms, err := model.LoRATargets(a, w)
	if err != nil {
		return nil
	}
	var roles []string
	for _, m := range ms {
		roles = append(roles, m.Role)
	}
	return roles
}

// headConfig adds a task head's keys to a config.json written by HFConfig:
// num_labels for a classifier, and a pad_token_id (decoders' sequence
// classifiers pool the last non-padding token and refuse batches without
// one).
func headConfig(m map[string]any, a model.Arch) {
	switch a.Head {
	case model.HeadSeqCls, model.HeadTokenCls:
		m["num_labels"] = a.Labels
		if _, ok := m["pad_token_id"]; !ok {
			m["pad_token_id"] = 0
		}
	}
}
