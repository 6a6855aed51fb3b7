package bench

import (
	"math"
	"math/bits"
	"time"
)

// Hist is a log-linear histogram of non-negative durations in microseconds, in the
// style of HdrHistogram: values below 2^subBits are exact, above that every power of
// two is split into 2^subBits buckets, so a recorded value is off by at most 1/64
// (1.6 %). 46 powers of two cover 0 … ~2 years; the bucket array is allocated on the
// first Record (about 3,000 counters, 24 KiB). Not safe for concurrent use.
type Hist struct {
	Counts []int64 `json:"-"`
	N      int64   `json:"n"`
	Min    int64   `json:"min"`
	Max    int64   `json:"max"`
	Sum    int64   `json:"sum"`
}

const (
	subBits    = 6
	subCount   = 1 << subBits
	histLevels = 46
	histSize   = (histLevels + 1) * subCount
)

func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1 // v>>e is in [subCount, 2*subCount)
	i := (e+1)*subCount + int(v>>e) - subCount
	if i >= histSize {
		return histSize - 1
	}
	return i
}

// bucketHigh is the highest value that falls in bucket i.
func bucketHigh(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	e := i/subCount - 1
	m := int64(i%subCount + subCount)
	return (m+1)<<e - 1
}

// bucketLow is the lowest value that falls in bucket i.
func bucketLow(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	e := i/subCount - 1
	return int64(i%subCount+subCount) << e
}

// Record adds one value (microseconds; negatives count as 0).
func (h *Hist) Record(us int64) {
	if us < 0 {
		us = 0
	}
	if h.Counts == nil {
		h.Counts = make([]int64, histSize)
	}
	h.Counts[bucketOf(us)]++
	if h.N == 0 || us < h.Min {
		h.Min = us
	}
	if us > h.Max {
		h.Max = us
	}
	h.N++
	h.Sum += us
}

// RecordDuration adds d.
func (h *Hist) RecordDuration(d time.Duration) { h.Record(d.Microseconds()) }

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	if o == nil || o.N == 0 {
		return
	}
	if h.Counts == nil {
		h.Counts = make([]int64, histSize)
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	if h.N == 0 || o.Min < h.Min {
		h.Min = o.Min
	}
	h.Max = max(h.Max, o.Max)
	h.N += o.N
	h.Sum += o.Sum
}

// Quantile returns the value at quantile q (0…1): the highest value of the bucket
// holding the ceil(q·N)-th value, capped by the exact maximum.
func (h *Hist) Quantile(q float64) int64 {
	if h.N == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.N)))
	rank = min(max(rank, 1), h.N)
	var seen int64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			return min(max(bucketHigh(i), h.Min), h.Max)
		}
	}
	return h.Max
}

// Mean is the exact mean.
func (h *Hist) Mean() float64 {
	if h.N == 0 {
		return 0
	}
	return float64(h.Sum) / float64(h.N)
}

// Sparse is the wire form of a Hist: the non-empty buckets as [index, count] pairs.
type Sparse struct {
	Buckets [][2]int64 `json:"b,omitempty"`
	N       int64      `json:"n"`
	Min     int64      `json:"min"`
	Max     int64      `json:"max"`
	Sum     int64      `json:"sum"`
}

// Sparse returns h's wire form.
func (h *Hist) Sparse() Sparse {
	s := Sparse{N: h.N, Min: h.Min, Max: h.Max, Sum: h.Sum}
	for i, c := range h.Counts {
		if c != 0 {
			s.Buckets = append(s.Buckets, [2]int64{int64(i), c})
		}
	}
	return s
}

// Hist rebuilds a histogram from its wire form.
func (s Sparse) Hist() *Hist {
	h := &Hist{N: s.N, Min: s.Min, Max: s.Max, Sum: s.Sum}
	if s.N > 0 {
		h.Counts = make([]int64, histSize)
		for _, b := range s.Buckets {
			if b[0] >= 0 && b[0] < histSize {
				h.Counts[b[0]] += b[1]
			}
		}
	}
	return h
}

// Summary is the figure set reports carry, in milliseconds.
type Summary struct {
	N    int64   `json:"n"`
	P50  float64 `json:"p50Ms"`
	P90  float64 `json:"p90Ms"`
	P99  float64 `json:"p99Ms"`
	P999 float64 `json:"p999Ms"`
	Max  float64 `json:"maxMs"`
	Mean float64 `json:"meanMs"`
}

// Summary returns the percentiles in milliseconds.
func (h *Hist) Summary() Summary {
	ms := func(us int64) float64 { return math.Round(float64(us)) / 1000 }
	return Summary{N: h.N, P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max), Mean: math.Round(h.Mean()) / 1000}
}
