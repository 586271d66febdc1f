package analytic

import "errors"

// SavedActivations lists, tensor by tensor, the bytes PyTorch eager autograd
// saves for backward in one forward pass of a (and the loss), for workload w,
// as Terms of group activations (per-layer terms carry Feature in elements
// and Coef in bytes per element) and logits. It is owned by activations.go;
// this placeholder lets other files compile until it lands.
func SavedActivations(a Arch, w Workload) ([]Term, error) {
	return nil, errors.New("analytic: SavedActivations not implemented yet")
}
