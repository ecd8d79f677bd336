package parsl_test

import (
	"os"
	"testing"

	"github.com/parsl-go/parsl"
)

// forgotMainEnv makes this test binary behave like a user's program that
// forgot parsl.Main (see TestLoadWithoutMain).
const forgotMainEnv = "PARSL_TEST_FORGOT_MAIN"

// TestMain lets executors start worker pools from this test binary.
func TestMain(m *testing.M) {
	if os.Getenv(forgotMainEnv) == "" {
		parsl.Main()
	}
	os.Exit(m.Run())
}
