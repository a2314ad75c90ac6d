package device

import (
	"container/heap"
	"time"
)

type timer struct {
	at      time.Time
	seq     uint64
	fn      func()
	idx     int
	stopped bool
}

// Stop cancels the timer; stopping a fired or stopped timer does nothing.
func (t *timer) Stop() {
	if t != nil {
		t.stopped = true
	}
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}

func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }

func (h *timerHeap) Push(x any) { t := x.(*timer); t.idx = len(*h); *h = append(*h, t) }

func (h *timerHeap) Pop() any { old := *h; t := old[len(old)-1]; *h = old[:len(old)-1]; return t }

func (h timerHeap) peek() *timer {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

// after runs fn on the loop once d has passed (by the box's clock).
func (b *Box) after(d time.Duration, fn func()) *timer {
	b.tseq++
	t := &timer{at: b.clock.Now().Add(d), seq: b.tseq, fn: fn}
	heap.Push(&b.timers, t)
	return t
}

// runDue fires every timer that is due. It reads the clock before each
// timer, since one that fires may take long, or the clock may step.
func (b *Box) runDue() {
	for {
		now := b.clock.Now()
		if now.Before(b.lastDue) {
			// The clock went back, and it has no monotonic reading to
			// keep the timers' delays by: keep them by moving every timer
			// back as far. (The order stays.)
			back := now.Sub(b.lastDue)
			for _, t := range b.timers {
				t.at = t.at.Add(back)
			}
		}
		b.lastDue = now
		t := b.timers.peek()
		if t == nil {
			return
		}
		if t.stopped {
			heap.Pop(&b.timers)
			continue
		}
		if t.at.After(now) {
			return
		}
		heap.Pop(&b.timers)
		t.stopped = true
		t.fn()
	}
}
