//go:build race

package httpstage_test

// raceEnabled scales down timing-sensitive tests under the race detector,
// which slows the HTTP stack several-fold.
const raceEnabled = true
