package cli

import (
	"os"
	"testing"

	"github.com/fleet-deploy/fleet/internal/nixconf"
)

// Every nix command here reads internal/nixconf's settings only.
func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }
