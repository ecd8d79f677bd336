package main

import (
	"math"
	"slices"
	"time"
)

// spread is the min/median/max of one measurement over repeats.
type spread struct {
	Min    float64   `json:"min"`
	Median float64   `json:"median"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"` // every repeat, in run order
}

func spreadOf(vals []float64) spread {
	s := spread{Values: slices.Clone(vals)}
	if len(vals) == 0 {
		return s
	}
	sorted := slices.Clone(vals)
	slices.Sort(sorted)
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.Median = median(sorted)
	return s
}

// median of sorted values; the mean of the middle two for an even count.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile of sorted durations by the nearest-rank method: the smallest
// sample with at least p% of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// round keeps n significant-looking decimals so the JSON stays readable.
func round(x float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(x*p) / p
}
