// Package alloc models PyTorch's native CUDA caching allocator: what
// torch.cuda.memory_allocated and memory_reserved report, and so what the
// allocator holds of the device, for a sequence of allocations and frees.
// It imports nothing of memval: the estimate (package analytic) and the
// simulated device (profiler/sim) both play their tensors through it, so
// agreement between the two says nothing about this model; only
// measurements of a real GPU do.
//
// Every rule is PyTorch's, from c10/cuda/CUDACachingAllocator.cpp
// (DeviceCachingAllocator, read at pytorch/pytorch commit 001074d2) and the
// option parser c10/core/AllocatorConfig.cpp (earlier
// c10/cuda/CUDAAllocatorConfig.cpp):
//
//	rule                                              PyTorch
//	zero-byte request: no allocation                  NativeCachingAllocator::allocate (malloc only for size != 0)
//	round up to 512 B (kMinBlockSize)                 round_size
//	roundup_power2_divisions: next of N steps         round_size, roundup_power2_next_division,
//	  between powers of 2 (per 1 MiB..64 GiB interval)  CUDAAllocatorConfig::roundup_power2_divisions
//	<= 1 MiB (kSmallSize): small pool, else large     get_pool
//	new segment: 2 MiB small (kSmallBuffer),          get_allocation_size
//	  20 MiB (kLargeBuffer) under 10 MiB
//	  (kMinLargeAlloc), else rounded to 2 MiB
//	  (kRoundLarge)
//	best fit: smallest cached block of the pool and   get_free_block (BlockComparatorSize: stream,
//	  stream that holds the request                     size, address)
//	max_split_size_mb: a smaller request never takes  get_free_block ("Do not return an oversized
//	  an oversized block; a larger one only within      block for a large request"), max_non_split_rounding
//	  max_non_split_rounding_mb (default 20 MiB)
//	split: small pool or expandable: remainder >=     should_split, alloc_found_block
//	  512 B; large: request < max_split_size and
//	  remainder > 1 MiB
//	free: merge with free neighbours, keep segment    free_block, try_merge_blocks
//	cudaMalloc fails: release oversized cached        malloc: alloc_block, release_available_cached_blocks,
//	  blocks (max_split_size set), then every           release_cached_blocks (release_blocks)
//	  segment that is one free block, then retry;
//	  a split segment cannot be released
//	expandable_segments: one segment per pool and     Note [Expandable Segments], try_allocate_expandable_block,
//	  stream grown by 2 MiB (small) or 20 MiB (large)   find_expandable_block, map_block, should_split
//	  pages; any remainder >= 512 B is split; pages
//	  are mapped into the lowest unmapped range that,
//	  with the free blocks around it, holds the
//	  request, else at the end
//	  best fit counts a free block's unmapped           get_free_block (expandable_size)
//	  neighbour (the end: unlimited)
//	  a release unmaps every page wholly inside a       release_blocks, unmap_block, ExpandableSegment::unmap,
//	  free block; a segment without pages is given      release_expandable_segment
//	  back
//	garbage_collection_threshold: with a memory       garbage_collect_cached_blocks, get_free_block
//	  fraction set, reclaim whole cached large          (get_free_blocks_call_count)
//	  segments at least as old as the average
//	per-stream caching: blocks are reused only on     get_free_block (stream check), BlockPool
//	  their stream
//	empty_cache                                       emptyCache -> release_cached_blocks
//
// What the model leaves out: CUDA graph private pools, cross-stream uses
// (record_stream and its events), IPC, the cudaMallocAsync backend, the
// limit of an expandable segment's addresses (PyTorch reserves 1 1/8 of
// the GPU's memory; the model none), and free-memory callbacks. The
// expandable-segment rules are derived from source, not measured.
package alloc
