package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

func printEstimate(e Estimate) {
	for _, t := range e.Terms {
		fmt.Printf("%-24s %12s\n", t.Name, FormatBytes(t.Bytes))
	}
	fmt.Printf("steady %s, peak %s\n", FormatBytes(e.Steady), FormatBytes(e.Peak))
}

func ExamplePredict_seed() {
	a, _ := model.Preset("seed-example")
	e, _ := Predict("seed", a, model.Workload{Batch: 8, Seq: 512})
	printEstimate(e)
	// Output:
	// weights                     470.8 MiB
	// gradients                   470.8 MiB
	// adam_states                 941.6 MiB
	// input_ids                    32.0 KiB
	// layer_activations           504.0 MiB
	// attention_matrix             96.0 MiB
	// logits                        1.1 GiB
	// backward_logits_buffer      781.2 MiB
	// steady 1.8 GiB, peak 4.3 GiB
}

func ExamplePredict_korthikanti() {
	a, _ := model.Preset("gpt2")
	e, _ := Predict("korthikanti", a, model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed, TP: 2, SP: true})
	printEstimate(e)
	// Output:
	// weights                     238.9 MiB
	// gradients                   238.9 MiB
	// optimizer_states            477.8 MiB
	// input_ids                    64.0 KiB
	// layer_activations             1.2 GiB
	// attention_scores              2.8 GiB
	// embedding_dropout_mask        3.0 MiB
	// output_layer_inputs          12.0 MiB
	// cross_entropy_logits        785.3 MiB
	// steady 955.8 MiB, peak 5.7 GiB
}

func ExamplePredict_deepspeed() {
	a, _ := model.Preset("llama-2-7b")
	e, _ := Predict("deepspeed", a, model.Workload{Batch: 1, Seq: 4096, ZeRO: 3, DP: 8})
	printEstimate(e)
	// Output:
	// largest_layer               500.0 MiB
	// model_states                 14.1 GiB
	// steady 14.6 GiB, peak 14.6 GiB
}

func ExamplePredict_megatron() {
	a, _ := model.Preset("llama-2-7b")
	e, _ := Predict("megatron", a, model.Workload{Batch: 1, Seq: 4096, TP: 8, SP: true, Checkpointing: model.SelectiveCheckpointing})
	printEstimate(e)
	// Output:
	// weights_and_optimizer        14.1 GiB
	// layer_activations             1.8 GiB
	// embedding_input               4.0 KiB
	// embedding_dropout             2.0 MiB
	// output_layer_input            8.0 MiB
	// cross_entropy_logits         62.5 MiB
	// overhead_5pct               818.6 MiB
	// steady 14.1 GiB, peak 16.8 GiB
}

func ExamplePredict_eleuther() {
	a, _ := model.Preset("llama-2-7b")
	e, _ := Predict("eleuther", a, model.Workload{Batch: 1, Seq: 4096, Precision: model.BF16Mixed, Inference: true})
	printEstimate(e)
	// Output:
	// weights                      12.6 GiB
	// inference_overhead            2.5 GiB
	// steady 12.6 GiB, peak 15.1 GiB
}

func ExamplePredict_accelerate() {
	a, _ := model.Preset("llama-2-7b")
	e, _ := Predict("accelerate", a, model.Workload{Batch: 1, Seq: 1, Precision: model.BF16Mixed})
	printEstimate(e)
	// Output:
	// weights                      12.6 GiB
	// adam_training                37.7 GiB
	// steady 50.2 GiB, peak 50.2 GiB
}
