package tryton

import (
	"errors"
	"net/http"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// Tryton's error answers as trytond 6.0 sends them, and what each maps to.
func TestTrytonErrors(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want error
	}{
		{`["UserError", ["The E-Mail \"x\" for party \"A\" is not valid.", "", null]]`, connectors.ErrInvalid},
		{`["UserError", ["You are trying to read records \"9\" of \"Party\" that don't exist anymore.", "", null]]`, connectors.ErrNotFound},
		{`["UserError", ["You are not allowed to write to records \"1\" of \"Party\" because of at least one of these rules:\nx", "", null]]`, connectors.ErrBadConfig},
		{`["ConcurrencyException", "Records were modified in the meanwhile"]`, connectors.ErrUnavailable},
		{`["'no_such_field'", "Traceback (most recent call last): ..."]`, connectors.ErrInvalid},
	} {
		err := classify(parseRPCError("model.party.party.write", []byte(tc.raw)))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.raw, err, tc.want)
		}
	}
	access := classify(parseRPCError("m", []byte(`["UserError", ["You are not allowed to create records", "", null]]`)))
	var ae *AccessError
	if !errors.As(access, &ae) || errors.Is(access, connectors.ErrInvalid) {
		t.Errorf("access error: %v", access)
	}
	if e := parseRPCError("m", []byte(`["'no_such_field'", "Traceback ..."]`)); e.Message != "'no_such_field'" {
		t.Errorf("the traceback must stay out of the message: %q", e.Message)
	}
	limited := statusError("common.db.login", &http.Response{StatusCode: 429, Header: http.Header{}}, nil)
	var ra *connectors.RetryAfterError
	if !errors.As(limited, &ra) || ra.After <= 0 || !errors.Is(limited, connectors.ErrUnavailable) {
		t.Errorf("429: %v", limited)
	}
	if err := statusError("m", &http.Response{StatusCode: 403, Header: http.Header{}}, nil); !errors.Is(err, connectors.ErrBadConfig) {
		t.Errorf("403: %v", err)
	}
}
