package loadscale

import "testing"

func TestFromLoad(t *testing.T) {
	for _, c := range []struct {
		line string
		cpus int
		want float64
	}{
		{"0.50 0.40 0.30 1/200 999", 2, 1},
		{"4.00 3.00 2.00 5/300 999", 2, 1},
		{"12.00 9.00 2.00 5/300 999", 2, 3},
		{"40.00 30.00 20.00 5/300 999", 2, 4},
		{"", 2, 1},
		{"x", 2, 1},
	} {
		if got := fromLoad(c.line, c.cpus); got != c.want {
			t.Errorf("fromLoad(%q, %d) = %v, want %v", c.line, c.cpus, got, c.want)
		}
	}
}

func TestFactorFromEnv(t *testing.T) {
	t.Setenv("DUPLEX_TEST_TIMEOUT_SCALE", "2.5")
	if f := Factor(); f != 2.5 {
		t.Fatalf("Factor with DUPLEX_TEST_TIMEOUT_SCALE=2.5: %v", f)
	}
}
