package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/scripts/mapping"
)

// Stable error codes of the API. Clients match on these, never on messages.
const (
	CodeBadRequest    = "bad_request"
	CodeNotFound      = "not_found"
	CodeConflict      = "conflict"
	CodeScriptInvalid = "script_invalid" // does not compile
	CodeScriptFailed  = "script_failed"  // compiled but failed when run (test runs)
	CodeTooLarge      = "too_large"
	CodeSlowBody      = "request_timeout"   // the body came slower than the minimum rate (limits.go)
	CodeSignature     = "signature_invalid" // a webhook's signature is missing or wrong
	CodeTooManyIDs    = "too_many_entities" // a webhook delivery names more entities than engine.MaxDeliveryEntities
	CodeBadConfig     = "system_config_invalid"
	CodeUnavailable   = "system_unavailable"
	CodeInternal      = "internal"

	CodeUnauthenticated    = "unauthenticated"     // no valid session or token
	CodeForbidden          = "forbidden"           // signed in, but the role does not allow it
	CodeCSRF               = "csrf_failed"         // a cookie-authenticated write without the CSRF header
	CodeInvalidCredentials = "invalid_credentials" // sign-in with a wrong email or password
	CodeRateLimited        = "rate_limited"        // too many failed sign-ins; see Retry-After
	CodeBusy               = "busy"                // the same work is running (an impact preview); see Retry-After

	// CodeTemplateInvalid: a team template, its parameters or an imported
	// archive is not acceptable (unknown file, unsafe path, literal not found).
	CodeTemplateInvalid = "template_invalid"

	// CodeOutboundRefused: a system's settings reach what the outbound
	// policy refuses; policy_rule names the rule (loopback, private, ...).
	CodeOutboundRefused = "outbound_refused"
	// CodeStoreFence: a system's settings name the store's own database.
	CodeStoreFence = "store_is_not_a_system"
	// A system's kind is not registered, a setting is unknown or of the
	// wrong type or missing, or a secret's name is unknown: field names it
	// ("kind", "settings.correlation_field", "secrets.tokn").
	CodeKindUnknown    = "connector_kind_unknown"
	CodeSettingInvalid = "system_setting_invalid"
	CodeSecretInvalid  = "system_secret_invalid"
	// CodeTemplateKindMismatch: a connection from a template whose side
	// fits other connector kinds than the chosen system's (field names the
	// side's system, expected_kinds what fits).
	CodeTemplateKindMismatch = "template_kind_mismatch"
	// CodeScriptTimeoutOverCap: connection options ask for a longer script
	// deadline than the sandbox allows (engine.MaxScriptTimeoutMS).
	CodeScriptTimeoutOverCap = "script_timeout_over_cap"
	// CodeNotAMapping: a direction's scripts are code, not a mapping (the
	// reason says why: edited by hand, or never made by the mapping editor);
	// GET …/mapping answers it in a 200, other uses as a 409.
	CodeNotAMapping = "not_a_mapping"
	// CodeMappingInvalid: a mapping the editor cannot render (the row named).
	CodeMappingInvalid = "mapping_invalid"
)

// The peer endpoints' codes (peers.go, docs/peers.md): the same strings as
// peering's Code* constants, which are the protocol's (peers_test.go checks).
const (
	CodePeerSignature   = "peer_signature_invalid"
	CodePeerReplay      = "peer_message_replayed"
	CodePeerDuplicate   = "peer_message_duplicate"
	CodePeerUnknown     = "peer_unknown"
	CodePeerRevoked     = "peer_revoked"
	CodePeerPaused      = "peer_paused"
	CodePeerInvitation  = "peer_invitation_invalid"
	CodePeerMalformed   = "peer_message_malformed"
	CodePeerRateLimited = "peer_rate_limited"
	CodePeerAddress     = "peer_address_refused"
	CodePeerUnreachable = "peer_unreachable"
)

// errBadRequest marks input the client must fix.
var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// apiError is the JSON body of every error.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Script  string `json:"script,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Rule    int    `json:"rule,omitempty"` // a validation rule's 1-based position
	// PolicyRule names the outbound policy rule that refused a system.
	PolicyRule string `json:"policy_rule,omitempty"`
	// Field names the refused part of a system (see CodeSettingInvalid).
	Field string `json:"field,omitempty"`
	// ExpectedKinds are the connector kinds a template's side fits.
	ExpectedKinds []string `json:"expected_kinds,omitempty"`
}

// classify is the one place that turns an error into an HTTP status and a
// stable code.
func classify(err error) (int, apiError) {
	var se *scripting.Error
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var refused *connectors.RefusedError
	var mismatch *scripts.KindMismatchError
	if status, body, ok := classifyPeer(err); ok { // peers.go
		return status, body
	}
	switch {
	case errors.As(err, &mismatch):
		return http.StatusUnprocessableEntity, apiError{Code: CodeTemplateKindMismatch, Message: mismatch.Error(),
			Field: "system_" + mismatch.Side + "_id", ExpectedKinds: mismatch.Want}
	case errors.As(err, &refused):
		code := CodeOutboundRefused
		if refused.Rule == connectors.RuleStore {
			code = CodeStoreFence
		}
		return http.StatusUnprocessableEntity, apiError{Code: code, Message: refused.Error(), PolicyRule: refused.Rule}
	case errors.Is(err, outbound.ErrInvalid):
		return http.StatusBadRequest, apiError{Code: CodeBadRequest, Message: err.Error()}
	case errors.As(err, &se):
		code := CodeScriptInvalid
		if se.Kind != scripting.ErrorCompile { // runtime, timeout, memory: the source is fine
			code = CodeScriptFailed
		}
		return http.StatusUnprocessableEntity, apiError{Code: code, Message: se.Error(),
			Script: se.Script, Line: se.Line, Column: se.Column, Rule: se.Rule}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, apiError{Code: CodeTooLarge,
			Message: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
	case errors.Is(err, errSlowBody):
		return http.StatusRequestTimeout, apiError{Code: CodeSlowBody, Message: err.Error()}
	case errors.Is(err, engine.ErrTooManyEntities):
		return http.StatusRequestEntityTooLarge, apiError{Code: CodeTooManyIDs, Message: err.Error()}
	case errors.As(err, &syn), errors.As(err, &typ):
		return http.StatusBadRequest, apiError{Code: CodeBadRequest, Message: "malformed JSON: " + err.Error()}
	case errors.Is(err, errUnauthenticated):
		return http.StatusUnauthorized, apiError{Code: CodeUnauthenticated, Message: err.Error()}
	case errors.Is(err, errInvalidCredentials):
		return http.StatusUnauthorized, apiError{Code: CodeInvalidCredentials, Message: err.Error()}
	case errors.Is(err, errCSRF):
		return http.StatusForbidden, apiError{Code: CodeCSRF, Message: err.Error()}
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, apiError{Code: CodeForbidden, Message: err.Error()}
	case errors.Is(err, service.ErrForbidden):
		return http.StatusForbidden, apiError{Code: CodeForbidden, Message: err.Error()}
	case errors.Is(err, errBadRequest), errors.Is(err, service.ErrInvalid):
		return http.StatusBadRequest, apiError{Code: CodeBadRequest, Message: err.Error()}
	case errors.Is(err, scripts.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, apiError{Code: CodeTooLarge, Message: err.Error()}
	case errors.Is(err, scripts.ErrInvalid):
		return http.StatusUnprocessableEntity, apiError{Code: CodeTemplateInvalid, Message: err.Error()}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, scripts.ErrNotFound), errors.Is(err, connectors.ErrNotFound):
		return http.StatusNotFound, apiError{Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, connectors.ErrSignature):
		return http.StatusUnauthorized, apiError{Code: CodeSignature, Message: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, apiError{Code: CodeConflict, Message: err.Error()}
	case errors.Is(err, mapping.ErrNotMapping):
		return http.StatusConflict, apiError{Code: CodeNotAMapping, Message: err.Error()}
	case errors.Is(err, mapping.ErrInvalid):
		return http.StatusUnprocessableEntity, apiError{Code: CodeMappingInvalid, Message: err.Error()}
	case errors.Is(err, engine.ErrScriptTimeoutOverCap):
		return http.StatusUnprocessableEntity, apiError{Code: CodeScriptTimeoutOverCap, Message: err.Error()}
	case errors.As(err, new(*connectors.KindError)), errors.As(err, new(*connectors.SettingError)), errors.As(err, new(*connectors.SecretError)):
		return http.StatusUnprocessableEntity, configError(err)
	case errors.Is(err, connectors.ErrBadConfig):
		return http.StatusUnprocessableEntity, apiError{Code: CodeBadConfig, Message: err.Error()}
	case errors.Is(err, connectors.ErrUnavailable):
		return http.StatusBadGateway, apiError{Code: CodeUnavailable, Message: err.Error()}
	default:
		return http.StatusInternalServerError, apiError{Code: CodeInternal, Message: "internal error"}
	}
}

// fail writes err as the response.
func (s *srv) fail(c *gin.Context, err error) {
	var rl *errRateLimited
	if errors.As(err, &rl) {
		c.Header("Retry-After", retryAfterSeconds(rl.retry))
		c.AbortWithStatusJSON(http.StatusTooManyRequests, apiError{Code: CodeRateLimited, Message: rl.Error()})
		return
	}
	var busy *errBusy
	if errors.As(err, &busy) {
		c.Header("Retry-After", retryAfterSeconds(busy.retry))
		c.AbortWithStatusJSON(http.StatusTooManyRequests, apiError{Code: CodeBusy, Message: busy.Error()})
		return
	}
	status, body := classify(err)
	if status >= 500 && status != http.StatusBadGateway {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "err", err)
	} else {
		s.log.Debug("request refused", "path", c.FullPath(), "status", status, "err", err)
	}
	c.AbortWithStatusJSON(status, body)
}

// configError is the body of a refused kind, setting or secret name.
func configError(err error) apiError {
	var ke *connectors.KindError
	var se *connectors.SettingError
	var sec *connectors.SecretError
	switch {
	case errors.As(err, &ke):
		return apiError{Code: CodeKindUnknown, Message: err.Error(), Field: "kind"}
	case errors.As(err, &se):
		field := "settings"
		if se.Field != "" {
			field += "." + se.Field
		}
		return apiError{Code: CodeSettingInvalid, Message: err.Error(), Field: field}
	case errors.As(err, &sec):
		return apiError{Code: CodeSecretInvalid, Message: err.Error(), Field: "secrets." + sec.Name}
	}
	return apiError{Code: CodeBadConfig, Message: err.Error()}
}
