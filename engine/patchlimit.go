package engine

import (
	"errors"
	"fmt"
	"sort"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// Limits on what one incoming script may write in one apply. A script's
// whole output is capped by the runner (scripting.DefaultMaxOutputBytes);
// these bound each field and the comments, which connectors write one
// request at a time (100,000 comments were written before).
const (
	// MaxFieldBytes is the largest value a field may get, JSON-encoded; a
	// comment's body too. The same as the replica limit (maxReplicaBytes).
	MaxFieldBytes = maxReplicaBytes
	// MaxCommentsPerApply is how many comments one apply may add.
	MaxCommentsPerApply = 1000
)

// ErrPatchTooLarge is wrapped by the error of an event whose incoming
// script wrote over these limits; it fails without retries (it also wraps
// connectors.ErrInvalid).
var ErrPatchTooLarge = errors.New("incoming script wrote over the limits")

// checkPatch refuses, before anything is written, fields over
// MaxFieldBytes and more than MaxCommentsPerApply new comments (those the
// target does not have yet, as addComments would add them).
func checkPatch(twin *store.Twin, src store.Side, local connectors.Entity, fields map[string]any, comments []connectors.Comment, replica map[string]any) error {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names) // the same field named on every retry
	for _, k := range names {
		n, err := canonicalLen(fields[k])
		if err != nil {
			return fmt.Errorf("%w: %w: field %q: %w", connectors.ErrInvalid, ErrPatchTooLarge, k, err)
		}
		if n > MaxFieldBytes {
			return fmt.Errorf("%w: %w: field %q is %d bytes, over the %d byte limit of a field", connectors.ErrInvalid, ErrPatchTooLarge, k, n, MaxFieldBytes)
		}
	}
	add, _ := newComments(loadLinks(twin), src, local, comments, replicaCommentIDs(replica))
	if len(add) > MaxCommentsPerApply {
		return fmt.Errorf("%w: %w: %d new comments, over the limit of %d per apply", connectors.ErrInvalid, ErrPatchTooLarge, len(add), MaxCommentsPerApply)
	}
	for i, c := range add {
		if len(c.Body) > MaxFieldBytes {
			return fmt.Errorf("%w: %w: comment %d is %d bytes, over the %d byte limit of a comment", connectors.ErrInvalid, ErrPatchTooLarge, i+1, len(c.Body), MaxFieldBytes)
		}
	}
	return nil
}
