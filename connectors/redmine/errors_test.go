package redmine

import (
	"errors"
	"fmt"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// Redmine's 422 with an empty error list is the answer to the loser of two
// concurrent saves: retryable. A 422 with errors is a refusal: permanent.
func TestRedmineErrors(t *testing.T) {
	as := func(code int, body string) error { // as httpx returns a 4xx
		return fmt.Errorf("%w: %w", connectors.ErrInvalid, &httpx.StatusError{Code: code, Method: "PUT", Path: "/issues/7.json", Body: body})
	}
	conflict := redmineErrors(as(422, `{"errors":[]}`))
	if !errors.Is(conflict, connectors.ErrUnavailable) || errors.Is(conflict, connectors.ErrInvalid) {
		t.Fatalf("empty 422: %v; want retryable (ErrUnavailable) only", conflict)
	}
	refused := redmineErrors(as(422, `{"errors":["Subject cannot be blank"]}`))
	if !errors.Is(refused, connectors.ErrInvalid) || refused.Error() != "invalid data for this system: redmine refused: Subject cannot be blank" {
		t.Fatalf("422 with errors: %v", refused)
	}
	if err := redmineErrors(as(403, `{"errors":[]}`)); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("403: %v; stays permanent", err)
	}
}
