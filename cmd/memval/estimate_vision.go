package main

import "github.com/memval/memval/analytic/model"

// imageSeq is the workload's sequence for a: a vision model (vit, dinov2)
// sees its tokens per image, patches + the class token, which --seq
// defaults to and must equal when given (--batch counts images); a text
// model keeps seq. --max-seq has nothing to search for a vision model.
func imageSeq(a model.Arch, seq int, given, maxSeq bool) (int, error) {
	n := model.ImageTokens(a)
	switch {
	case n == 0:
		return seq, nil
	case maxSeq:
		return 0, usagef("--max-seq: a %s model's sequence is its %d tokens per image, fixed by image_size and patch_size; use --max-batch (images) instead",
			a.Family, n)
	case given && seq != n:
		return 0, usagef("--seq %d: a %s model of image_size %d and patch_size %d sees %d tokens per image (%d patches + the class token); leave --seq out or give %d (--batch counts images)",
			seq, a.Family, a.ImageSize, a.PatchSize, n, n-1, n)
	}
	return n, nil
}
