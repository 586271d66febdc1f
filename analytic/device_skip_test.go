package analytic

import (
	"fmt"
	"testing"

	"github.com/memval/memval/analytic/alloc"
)

// TestDeviceSkippedFreesChangeNoPeak: without a timeline the player skips
// the last step's frees (after its last allocation); the peaks must be
// those of the full step, which the timeline plays, and equal the
// timeline's largest figures.
func TestDeviceSkippedFreesChangeNoPeak(t *testing.T) {
	for _, conf := range []string{"", "expandable_segments:True", "max_split_size_mb:64"} {
		cfg, err := alloc.ParseConf(conf)
		if err != nil {
			t.Fatal(err)
		}
		for _, dw := range deviceWorkloads {
			t.Run(fmt.Sprintf("%s/b%d/s%d/%s", dw.preset, dw.w.Batch, dw.w.Seq, conf), func(t *testing.T) {
				fast := deviceEstimate(t, "breakdown", dw.preset, dw.w, DeviceOptions{Alloc: cfg})
				full := deviceEstimate(t, "breakdown", dw.preset, dw.w, DeviceOptions{Alloc: cfg, Timeline: true})
				var maxA, maxR uint64
				for _, pt := range full.Device.Timeline {
					maxA, maxR = max(maxA, pt.Allocated), max(maxR, pt.Reserved)
				}
				if fast.Device.AllocatedPeak != full.Device.AllocatedPeak || fast.Device.ReservedPeak != full.Device.ReservedPeak {
					t.Errorf("peaks %d %d without the timeline, %d %d with it", fast.Device.AllocatedPeak, fast.Device.ReservedPeak,
						full.Device.AllocatedPeak, full.Device.ReservedPeak)
				}
				if maxA != full.Device.AllocatedPeak || maxR != full.Device.ReservedPeak {
					t.Errorf("timeline's largest %d %d, peaks %d %d", maxA, maxR, full.Device.AllocatedPeak, full.Device.ReservedPeak)
				}
			})
		}
	}
}
