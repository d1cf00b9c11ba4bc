// Package testbin builds the duplex binary once for a test package that
// runs it as a separate process (the crash and hostile-script suites), and
// skips the build under -short, where those tests skip themselves.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Main is a TestMain body: it builds ../../cmd/duplex into a temporary
// folder named after prefix, sets *binary to it, runs the tests and exits.
func Main(m *testing.M, prefix string, binary *string) {
	for _, a := range os.Args {
		if a == "-test.short=true" || a == "-test.short" {
			os.Exit(m.Run())
		}
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*binary = filepath.Join(dir, "duplex")
	build := exec.Command("go", "build", "-o", *binary, "../../cmd/duplex")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build duplex:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
