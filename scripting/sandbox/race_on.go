//go:build race

package sandbox

// raceBuild: the race detector reserves terabytes of address space for its
// shadow memory, so a race-enabled worker cannot run under RLIMIT_AS.
const raceBuild = true
