package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// commit is set by `make build` (-ldflags "-X main.commit=…"): the Go
// toolchain records no commit in a git worktree or with -buildvcs=false.
var commit string

// versionString is what `duplex version` prints: the version (set with
// -ldflags "-X main.version=…", else the module's version when built with
// go install, else "dev") and the commit the binary was built from, from the
// build info the Go toolchain records, else from commit (issue 19: it
// printed only "dev").
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, commit, bi)
}

func describeBuild(v, linked string, bi *debug.BuildInfo) string {
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		rev = linked
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	parts := []string{"commit " + rev}
	if rev == "" {
		parts = []string{"no commit recorded"}
	}
	if at != "" {
		parts = append(parts, at)
	}
	if modified {
		parts = append(parts, "with uncommitted changes")
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return fmt.Sprintf("%s (%s)", v, strings.Join(parts, ", "))
}
