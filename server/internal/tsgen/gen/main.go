// Command gen writes the app's generated API types; `go generate ./server`
// runs it in the server directory: gen <output file>.
package main

import (
	"fmt"
	"os"

	"github.com/duplexsync/duplex/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tsgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: gen <output.ts> (run in the server directory)")
	}
	src, err := os.ReadFile("errors.go")
	if err != nil {
		return err
	}
	ts, err := server.TypeScript(src)
	if err != nil {
		return err
	}
	return os.WriteFile(args[0], ts, 0o644)
}
