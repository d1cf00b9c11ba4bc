package connectors

import "errors"

// PartialError is a write the system took only in part: it saved the
// Applied fields and refused the Refused ones (Redmine saves the other
// fields of an update whose status move its workflow refuses). It unwraps
// to Err, which says why (usually wrapping ErrInvalid). The engine records
// both lists on the event and its retry sends only what is left.
type PartialError struct {
	Applied []string // fields the system saved
	Refused []string // fields it refused
	Err     error
}

func (e *PartialError) Error() string { return e.Err.Error() }

func (e *PartialError) Unwrap() error { return e.Err }

// Partial returns the PartialError in err's chain, if any.
func Partial(err error) (*PartialError, bool) {
	var p *PartialError
	ok := errors.As(err, &p)
	return p, ok
}
