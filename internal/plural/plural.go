// Package plural writes a count with its noun for messages people read:
// "1 field", "2 fields", never "1 field(s)" (issue 19).
package plural

import "fmt"

// Of writes n with the noun: one when n is 1, else one+"s".
func Of(n int64, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}
