package server

import (
	"testing"

	"github.com/duplexsync/duplex/peering"
)

// The edge's codes are the protocol's: a sender matches the receiver's
// answer on them (a duplicate counts as delivered).
func TestPeerCodesAreTheProtocols(t *testing.T) {
	for server, protocol := range map[string]string{
		CodePeerSignature: peering.CodeSignature, CodePeerReplay: peering.CodeReplay, CodePeerDuplicate: peering.CodeDuplicate,
		CodePeerUnknown: peering.CodeUnknown, CodePeerRevoked: peering.CodeRevoked, CodePeerPaused: peering.CodePaused,
		CodePeerInvitation: peering.CodeInvitation, CodePeerMalformed: peering.CodeMalformed,
		CodePeerRateLimited: peering.CodeRateLimited, CodePeerAddress: peering.CodeAddress,
	} {
		if server != protocol {
			t.Errorf("server code %q, protocol code %q", server, protocol)
		}
	}
}
