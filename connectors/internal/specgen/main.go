// Command specgen writes spec_gen.go in a connector package: the
// []connectors.Setting its Spec lists, derived from the package's Settings
// struct, its json tags, `spec` tags (required, default=, enum=a|b, type=)
// and doc comments, so a setting is described once, where it is declared.
//
// Run it through go generate in the package's directory:
//
//	//go:generate go run ../internal/specgen
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	typeName := flag.String("type", "Settings", "the settings struct")
	out := flag.String("out", "spec_gen.go", "the file to write")
	flag.Parse()
	src, err := Generate(".", *typeName)
	if err != nil {
		fmt.Fprintln(os.Stderr, "specgen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "specgen:", err)
		os.Exit(1)
	}
}
