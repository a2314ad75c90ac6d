package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// provision gives box b a key with a fob and two access codes, a drop-off
// and a pickup one, through signed commands, as a cloud does.
func (f *fleet) provision(b *simBox, i int) error {
	b.serial = fmt.Sprintf("%010X", 0xA0000000+i)
	b.dropCode = fmt.Sprintf("%08d", 10_000_000+i)
	b.pickCode = fmt.Sprintf("%08d", 50_000_000+i)
	cmds := []struct {
		typ  string
		data map[string]any
	}{
		{"key.upsert", map[string]any{"key_id": "k1", "name": "Flat 1", "serial_number": b.serial}},
		{"access_code.upsert", map[string]any{"access_code_id": "drop", "code": b.dropCode, "name": "guest drop-off", "type": "ongoing", "key_id": "k1", "action": "dropoff"}},
		{"access_code.upsert", map[string]any{"access_code_id": "pick", "code": b.pickCode, "name": "guest pickup", "type": "ongoing", "key_id": "k1", "action": "pickup"}},
	}
	for n, c := range cmds {
		if _, err := f.cloud.call(b.id, fmt.Sprintf("prov-%d", n), c.typ, c.data, 10*time.Second, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// guestStep runs the next step of box b's guest cycle at its keypad and
// reader: a drop-off (the code, then the fob read in the opened bin), a
// wrong code, a pickup (the code, then the fob gone). Each step makes
// events; whether the guest's flow succeeds does not matter to the fleet
// figures, which count what the boxes wrote.
func (b *simBox) guestStep() {
	switch b.step.Add(1) % 3 {
	case 1:
		b.box.KeypadEntry(b.dropCode)
		b.box.FobPresent(1, b.serial)
		b.box.FobPresent(2, b.serial)
	case 2:
		b.box.KeypadEntry("0000")
	default:
		b.box.KeypadEntry(b.pickCode)
		b.box.FobAbsent(1)
		b.box.FobAbsent(2)
	}
}

// traffic runs guest steps on random boxes at rate steps a second until
// ctx ends.
func (f *fleet) traffic(ctx context.Context, rate float64) {
	if rate <= 0 {
		return
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	every := time.Duration(float64(time.Second) / rate)
	t := time.NewTicker(max(every, time.Millisecond))
	defer t.Stop()
	per := max(1, int(float64(time.Millisecond)/float64(every))) // steps per tick when rate > 1000/s
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for range per {
			f.boxes[r.IntN(len(f.boxes))].guestStep()
		}
	}
}

// burst runs steps guest steps on every box as fast as the boxes take them.
func (f *fleet) burst(steps int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, b := range f.boxes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for range steps {
				b.guestStep()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.box.Flush(ctx) // the box has taken every step
		}()
	}
	wg.Wait()
}
