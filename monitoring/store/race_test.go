//go:build race

package store

// raceEnabled shrinks the size test: the race detector slows SQLite ~10x.
const raceEnabled = true
