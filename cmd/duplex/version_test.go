package main

import (
	"runtime/debug"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "6f3645181f6adbf24410e730617dc99e20588b4a"},
		{Key: "vcs.time", Value: "2026-12-02T06:23:25Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	cases := []struct {
		name, v, linked string
		bi              *debug.BuildInfo
		want            string
	}{
		{"no build info", "dev", "", nil, "dev (no commit recorded)"},
		{"no build info, the commit from make", "dev", "6f3645181f6a", nil, "dev (commit 6f3645181f6a)"},
		{"a worktree build by make", "dev", "6f3645181f6a", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "dev (commit 6f3645181f6a, go1.26.8)"},
		{"a local build with git", "dev", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"dev (commit 6f3645181f6a, 2026-12-02T06:23:25Z, with uncommitted changes, go1.26.8)"},
		{"go install of a tag", "dev", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}},
			"v1.2.0 (no commit recorded, go1.26.8)"},
		{"a version set at link time wins", "1.3.0", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: vcs[:3]},
			"1.3.0 (commit 6f3645181f6a, 2026-12-02T06:23:25Z, go1.26.8)"},
	}
	for _, c := range cases {
		if got := describeBuild(c.v, c.linked, c.bi); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
