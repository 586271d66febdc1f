package alloc

// RefAllocator and NewRef give the external tests (package alloc_test)
// the reference implementation of reference_test.go.
type RefAllocator = refAllocator

// NewRef is New for the reference implementation.
func NewRef(cfg Config, capacity uint64) *RefAllocator { return newRef(cfg, capacity) }
