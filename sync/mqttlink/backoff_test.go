package mqttlink

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/internal/mqtttest"
)

// timerClock is a fake clock that reports the duration of every timer it
// makes, once the timer exists (so advancing by it fires it).
type timerClock struct {
	*clockwork.FakeClock
	timers chan time.Duration
}

func (c *timerClock) NewTimer(d time.Duration) clockwork.Timer {
	t := c.FakeClock.NewTimer(d)
	select {
	case c.timers <- d:
	default: // a test that reads none fails on the waits it misses
	}
	return t
}

// nextWait is the next reconnect wait the link asks the clock for: the
// state throttle's timers (at most StateInterval) are passed over, and the
// ack timeout is an hour, beyond every backoff here.
func (c *timerClock) nextWait(t *testing.T) time.Duration {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case d := <-c.timers:
			if d > DefaultStateInterval && d < time.Hour {
				return d
			}
		case <-deadline:
			t.Fatalf("the link armed no reconnect wait within %v", wait)
		}
	}
}

// TestReconnectSchedule runs a link on the injected clock and random
// source against a real broker that is down, then up, then down again, and
// checks each wait it takes before an attempt: full jitter (the draw times
// the window), the window starting at ReconnectMin and doubling per failed
// attempt up to ReconnectMax, and, after a lost connection, the first
// window again — ReconnectMin, not 1 s, and not the last window before the
// connection was made. A link that waited its whole window, never doubled,
// or came back after a loss sooner than ReconnectMin allows fails it.
func TestReconnectSchedule(t *testing.T) {
	t.Parallel()
	const least, most = 20 * time.Second, 60 * time.Second
	br := mqtttest.Start(t)
	br.Stop() // refuses connections until Restart
	b := startBox(t, t.TempDir())
	clock := &timerClock{FakeClock: clockwork.NewFakeClock(), timers: make(chan time.Duration, 1024)}
	draws := []float64{0.25, 0.5, 0.75, 0.1, 0.3, 0.9}
	next := 0
	tl := startLink(t, b, br.URL(), func(c *Config) {
		c.Clock, c.AckTimeout = clock, time.Hour
		c.ReconnectMin, c.ReconnectMax = least, most
		c.Rand = func() float64 { r := draws[next%len(draws)]; next++; return r }
	})
	attempts := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(wait)
		for tl.Stats().Attempts < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d connection attempts, want %d", tl.Stats().Attempts, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	step := func(name string, want time.Duration) {
		t.Helper()
		if got := clock.nextWait(t); got != want {
			t.Fatalf("%s: waited %v, want %v", name, got, want)
		}
		clock.Advance(want)
	}

	step("first connect after start", 5*time.Second) // 0.25 of 20 s
	attempts(1)
	step("after one failure", 20*time.Second) // 0.5 of 40 s
	attempts(2)
	step("after two failures", 45*time.Second) // 0.75 of 80 s, capped at 60 s
	attempts(3)
	br.Restart()
	step("after three failures", 6*time.Second) // 0.1 of 60 s
	attempts(4)
	deadline := time.Now().Add(wait)
	for !tl.Stats().Connected {
		if time.Now().After(deadline) {
			t.Fatalf("not connected once the broker was back: %+v", tl.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	br.Stop()
	step("first reconnect after the loss", 6*time.Second) // 0.3 of 20 s: the doubling starts again
	attempts(5)
	step("after the first failed reconnect", 36*time.Second) // 0.9 of 40 s
}

// TestBackoffSpreadsAFleet runs the backoff schedule, with a seeded random
// source, for a fleet of 1,000 boxes that lost their broker at the same
// instant, and counts the attempts made in each second after it returned:
// with the first window at 20 s no second sees more than a tenth of the
// fleet, and every box has tried again within ReconnectMax of the return.
// A schedule whose waits lost their jitter would bunch the fleet, and one
// whose windows did not grow would keep the late boxes waiting.
func TestBackoffSpreadsAFleet(t *testing.T) {
	const (
		boxes = 1000
		least = 20 * time.Second
		most  = 60 * time.Second
	)
	for _, down := range []time.Duration{0, time.Second, 3 * time.Second, 10 * time.Second, 30 * time.Second, 5 * time.Minute} {
		t.Run(down.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(down)))
			perSecond := map[int]int{}
			var latest time.Duration
			for range boxes {
				// Attempts fail while the broker is away; the first one
				// after its return connects.
				var at time.Duration
				for failures := 0; ; failures++ {
					at += backoff(failures, least, most, rng.Float64())
					if at >= down {
						break
					}
				}
				perSecond[int(math.Floor((at-down).Seconds()))]++
				latest = max(latest, at-down)
			}
			peak := 0
			for _, n := range perSecond {
				peak = max(peak, n)
			}
			if peak > boxes/10 {
				t.Errorf("%d of %d boxes reconnected in one second", peak, boxes)
			}
			if latest > most {
				t.Errorf("the last box reconnected %v after the broker returned, beyond %v", latest, most)
			}
		})
	}
}
