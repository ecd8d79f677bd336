//go:build !race

package httpstage_test

const raceEnabled = false
