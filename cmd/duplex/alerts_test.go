package main

import (
	"testing"
	"time"
)

func TestAlertConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := alertConfig(env(map[string]string{
		"DUPLEX_ALERT_WEBHOOK": "https://hooks.example/x", "DUPLEX_ALERT_FORMAT": "teams",
		"DUPLEX_ALERT_FAILURES": "3", "DUPLEX_ALERT_QUEUE_AGE": "30m",
	}))
	if err != nil || c.Format != "teams" || c.FailureCount != 3 || c.QueueAge != 30*time.Minute || c.Webhook == "" {
		t.Fatalf("%+v %v", c, err)
	}
	if c, err := alertConfig(env(nil)); err != nil || c.Webhook != "" {
		t.Fatalf("empty environment: %+v %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"DUPLEX_ALERT_FORMAT": "xml"},
		{"DUPLEX_ALERT_WEBHOOK": "ftp://x"},
		{"DUPLEX_ALERT_INTERVAL": "soon"},
		{"DUPLEX_ALERT_FAILURES": "-1"},
	} {
		if _, err := alertConfig(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
