package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// checkImageSeq checks that a vision model's workload sees its tokens per
// image (model.ImageTokens: patches + the class token) as the sequence:
// for vit and dinov2 Workload.Seq is that count and Workload.Batch is
// images.
func checkImageSeq(a model.Arch, seq int) error {
	n := model.ImageTokens(a)
	if n == 0 || seq == n {
		return nil
	}
	return &model.FieldError{Field: "seq", Value: seq,
		Reason: fmt.Sprintf("a %s model of image_size %d and patch_size %d sees %d tokens per image (%d patches + the class token); give seq %d (batch counts images)",
			a.Family, a.ImageSize, a.PatchSize, n, n-1, n)}
}
