package main

import (
	"os"
	"testing"

	"github.com/duplexsync/duplex/scripting/sandbox"
)

// The test binary is its own script worker (serve and demo start a pool).
func TestMain(m *testing.M) {
	sandbox.ServeIfWorker()
	os.Exit(m.Run())
}
