package devices

import (
	"testing"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// TestMain shares one compilation cache among the tests, so the plugins
// compile once per run rather than once per test.
func TestMain(m *testing.M) { plugintest.Main(m) }
