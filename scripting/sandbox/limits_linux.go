package sandbox

import (
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// limitSelf applies the worker's OS limits. RLIMIT_AS makes an allocation
// past mem fail (the Go runtime then aborts with "fatal error: runtime: out
// of memory", which the parent reports as the memory limit); the soft Go
// memory limit below it makes the collector work hard before that. RLIMIT_CPU
// is a backstop for a worker the parent could not kill; the parent recycles
// workers long before their CPU time gets near it.
//
// The Go runtime reserves (PROT_NONE) well over 1 GiB of address space at
// start that it never backs, so the limit is that starting size plus mem:
// mem is what the scripts' heap may grow into.
func limitSelf(mem, cpu uint64) error {
	if mem > 0 && !raceBuild {
		as := vmSize() + mem
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: as, Max: as}); err != nil {
			return err
		}
	}
	if mem > 0 {
		debug.SetMemoryLimit(int64(mem / 2))
	}
	if cpu > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: cpu, Max: cpu + 5}); err != nil {
			return err
		}
	}
	return nil
}

// vmSize is this process's address-space size now (0 if unknown).
func vmSize() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmSize:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procAttr: the worker gets its own process group (a Ctrl-C at the terminal
// reaches the server, which stops its workers itself) and is killed by the
// kernel if the server dies without stopping it.
func procAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
