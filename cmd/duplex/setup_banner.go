package main

import (
	"fmt"
	"io"
)

// setupBanner is what `duplex serve` prints on an empty store: the one-time
// link to create the first admin, on lines of its own rather than inside a
// log line (issue 19), and on standard output only, never in the logs that
// may be shipped elsewhere.
const setupBanner = `
Duplex has no users yet. Open this link to create the first admin (it works once):

  %s

`

func printSetupBanner(out io.Writer, link string) {
	fmt.Fprintf(out, setupBanner, link)
}
