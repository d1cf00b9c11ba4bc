// Package streamtest gives tests large, repeatable byte streams that are
// never held whole in memory, and streams that break part-way, for the
// attachment tests of the connectors, the engine and the end-to-end suite.
package streamtest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
)

// Pattern yields size pseudo-random bytes from seed; the same seed and size
// give the same bytes.
func Pattern(seed uint32, size int64) io.Reader { return &pattern{x: seed, size: size} }

type pattern struct {
	x       uint32
	n, size int64
}

func (g *pattern) Read(p []byte) (int, error) {
	if g.n >= g.size {
		return 0, io.EOF
	}
	if rest := g.size - g.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	for i := range p {
		g.x = g.x*1664525 + 1013904223 // a linear congruential generator: cheap and repeatable
		p[i] = byte(g.x >> 24)
	}
	g.n += int64(len(p))
	return len(p), nil
}

// SHA256 reads r to the end and returns its hex SHA-256.
func SHA256(r io.Reader) string {
	h := sha256.New()
	_, _ = io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

// Breaking reads r and then fails as a dropped connection would, instead of
// ending cleanly.
func Breaking(r io.Reader) io.Reader { return breaking{r} }

type breaking struct{ r io.Reader }

func (b breaking) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}
