//go:build race

package scripting

// raceBuild: the race detector slows goja's native code 5-20 times, so a
// run that meets its memory budget normally may meet its deadline first.
const raceBuild = true
