package engine

import (
	"errors"
	"fmt"

	"github.com/duplexsync/duplex/scripting"
)

// MaxScriptTimeoutMS is the largest script_timeout_ms a connection may
// ask for: the script runner's cap (scripting.DefaultMaxTimeout). A larger
// value used to be accepted and silently capped when run.
const MaxScriptTimeoutMS = int(scripting.DefaultMaxTimeout / 1e6)

// ErrScriptTimeoutOverCap marks options asking for a longer script
// deadline than MaxScriptTimeoutMS.
var ErrScriptTimeoutOverCap = errors.New("script_timeout_ms over the cap")

// CheckLifecycle refuses options over the limits of the script sandbox.
// It is separate from ParseLifecycle so that a connection stored before
// the check still loads (its deadline is capped when run); the API and
// `duplex apply` call both.
func CheckLifecycle(o Lifecycle) error {
	if o.ScriptTimeoutMS > MaxScriptTimeoutMS {
		return fmt.Errorf("%w: script_timeout_ms is %d; the most a script may run is %d ms", ErrScriptTimeoutOverCap, o.ScriptTimeoutMS, MaxScriptTimeoutMS)
	}
	return nil
}
