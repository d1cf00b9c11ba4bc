// Command gendoc rewrites the generated settings reference of every
// connector kind in the Markdown file it is given (docs/connectors.md).
package main

import (
	"fmt"
	"os"

	"github.com/duplexsync/duplex/connectors/kinds"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendoc FILE.md")
		os.Exit(2)
	}
	doc, err := os.ReadFile(os.Args[1])
	if err == nil {
		doc, err = kinds.UpdateDoc(doc, kinds.Specs())
	}
	if err == nil {
		err = os.WriteFile(os.Args[1], doc, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}
