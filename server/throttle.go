package server

import (
	"sync"
	"time"
)

// accountDelay slows guessing at one account without locking its owner
// out (issue 24: five failures used to lock an account for everyone, so
// anyone could lock out any named user). After Max failed sign-ins on an
// account within Window (from any addresses), each further attempt must
// wait since the account's last failure: BaseDelay, doubling with each
// further failure, at most MaxDelay. An attempt that waits its turn is
// checked like any other, so the owner's right password is accepted from a
// new address once the delay has passed; an attempt within the delay is
// answered 429 with Retry-After without checking the password and does not
// count. A success, or an org admin's unlock, clears the account.
type accountDelay struct {
	mu  sync.Mutex
	o   ThrottleOptions
	m   map[string]*accountFails
	now func() time.Time
}

type accountFails struct {
	n    int       // failures since the account was last clear
	last time.Time // the latest
}

func newAccountDelay(o ThrottleOptions) *accountDelay {
	return &accountDelay{o: o, m: map[string]*accountFails{}, now: o.clock()}
}

// state drops an account whose last failure left the window.
func (a *accountDelay) state(k string, now time.Time) *accountFails {
	f := a.m[k]
	if f != nil && now.Sub(f.last) >= a.o.Window {
		delete(a.m, k)
		return nil
	}
	return f
}

func (a *accountDelay) delay(n int) time.Duration {
	d := a.o.BaseDelay
	for i := a.o.Max; i < n && d < a.o.MaxDelay; i++ {
		d *= 2
	}
	return min(d, a.o.MaxDelay)
}

// wait is how long an attempt on account k must still wait (0: may try).
func (a *accountDelay) wait(k string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	f := a.state(k, now)
	if f == nil || f.n < a.o.Max {
		return 0
	}
	return max(0, f.last.Add(a.delay(f.n)).Sub(now))
}

func (a *accountDelay) fail(k string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.m) > throttleKeys {
		for k := range a.m {
			a.state(k, now)
		}
	}
	f := a.state(k, now)
	if f == nil {
		f = &accountFails{}
		a.m[k] = f
	}
	f.n++
	f.last = now
}

func (a *accountDelay) reset(k string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, k)
}
