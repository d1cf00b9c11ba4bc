package scripts

import (
	"fmt"
	"sort"
	"strings"
)

// FileDiff is how one file of a template folder changed between versions.
type FileDiff struct {
	Path   string `json:"path"`
	Status string `json:"status"` // added, removed, changed
	// Unified is a unified diff with three lines of context, headed by
	// "--- a/<path>" and "+++ b/<path>".
	Unified string `json:"unified"`
}

// DiffBodies compares two versions file by file, in their folder layout, so
// a change to template.json (a parameter's default) or a fixture shows too.
// Files equal in both are left out.
func DiffBodies(old, cur Body) ([]FileDiff, error) {
	a, err := old.Files()
	if err != nil {
		return nil, err
	}
	b, err := cur.Files()
	if err != nil {
		return nil, err
	}
	return DiffFiles(a, b), nil
}

// DiffFiles compares two folders given as path → content.
func DiffFiles(a, b map[string][]byte) []FileDiff {
	paths := map[string]bool{}
	for p := range a {
		paths[p] = true
	}
	for p := range b {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	var out []FileDiff
	for _, p := range sorted {
		oldText, inA := a[p]
		newText, inB := b[p]
		if inA && inB && string(oldText) == string(newText) {
			continue
		}
		status := "changed"
		switch {
		case !inA:
			status = "added"
		case !inB:
			status = "removed"
		}
		out = append(out, FileDiff{Path: p, Status: status, Unified: Unified(p, string(oldText), string(newText))})
	}
	return out
}

// maxDiffCells bounds the LCS table; past it the whole file counts as
// replaced, which is still a correct (if coarse) diff.
const maxDiffCells = 4 << 20

type op struct {
	kind byte // ' ', '-', '+'
	text string
}

// Unified returns a unified diff of two texts with three lines of context
// ("" when they are equal).
func Unified(name, a, b string) string {
	if a == b {
		return ""
	}
	ops := lineDiff(splitLines(a), splitLines(b))
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- a/%s\n+++ b/%s\n", name, name)
	const ctx = 3
	// Walk the ops, grouping changes whose context overlaps into one hunk.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-ctx, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		oldLine, newLine := 1, 1
		for _, o := range ops[:start] {
			if o.kind != '+' {
				oldLine++
			}
			if o.kind != '-' {
				newLine++
			}
		}
		oldN, newN := 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				oldN++
			}
			if o.kind != '-' {
				newN++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(oldLine, oldN), hunkRange(newLine, newN))
		for _, o := range ops[start:end] {
			sb.WriteByte(o.kind)
			sb.WriteString(o.text)
			sb.WriteByte('\n')
		}
		i = end
	}
	return sb.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start-1)
	}
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// lineDiff is the textbook longest-common-subsequence diff: scripts are a
// few hundred lines, so the quadratic table is small.
func lineDiff(a, b []string) []op {
	if len(a)*len(b) > maxDiffCells {
		ops := make([]op, 0, len(a)+len(b))
		for _, l := range a {
			ops = append(ops, op{'-', l})
		}
		for _, l := range b {
			ops = append(ops, op{'+', l})
		}
		return ops
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	w := len(b) + 1
	lcs := make([]int, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	ops := make([]op, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			ops = append(ops, op{' ', a[i]})
			i++
			j++
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			ops = append(ops, op{'-', a[i]})
			i++
		default:
			ops = append(ops, op{'+', b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		ops = append(ops, op{'-', a[i]})
	}
	for ; j < len(b); j++ {
		ops = append(ops, op{'+', b[j]})
	}
	return ops
}
