//go:build !linux

package sandbox

import (
	"os/exec"
	"runtime/debug"
	"time"
)

// limitSelf: without Linux rlimits, only the Go memory limit (soft); the
// parent's deadline kill still applies.
func limitSelf(mem, cpu uint64) error {
	if mem > 0 {
		debug.SetMemoryLimit(int64(mem / 2))
	}
	return nil
}

func cpuTime() time.Duration { return 0 }

func procAttr(cmd *exec.Cmd) {}
