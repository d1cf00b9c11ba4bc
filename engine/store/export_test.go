package store

import "time"

// SetCreatedLinger sets how long creates' answers wait for an intent.
func SetCreatedLinger(s *Store, d time.Duration) {
	s.intents.mu.Lock()
	s.intents.linger = d
	s.intents.mu.Unlock()
}
