package parsl_test

import (
	"os"
	"testing"

	"github.com/parsl-go/parsl"
)

// TestMain lets executors start worker pools from this test binary.
func TestMain(m *testing.M) {
	parsl.Main()
	os.Exit(m.Run())
}
