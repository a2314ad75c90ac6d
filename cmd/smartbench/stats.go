package main

import (
	"slices"
	"time"
)

// samples are durations measured one by one.
type samples []time.Duration

// quantile returns the q-quantile (0..1) by the nearest-rank method: the
// smallest sample at or above which a fraction q of the samples lie.
func (s samples) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	rank := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func (s samples) median() time.Duration { return s.quantile(0.5) }

// medianFloat is the median of xs (the mean of the middle two for an even
// count).
func medianFloat(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// us is d in microseconds, ms in milliseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
