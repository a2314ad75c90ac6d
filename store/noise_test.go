package store

import (
	"encoding/json"
	"fmt"
	"testing"

	"smartboxd/contract"
)

// TestOverflowDropsNoiseFirst: a full outbox lets noise go before ordinary
// events, and those before events that report a bin, a key, a code or a
// login. Every bin.* and key.* event of a long outage survives; the index of
// what may go stays in step with the outbox through acks.
func TestOverflowDropsNoiseFirst(t *testing.T) {
	const max = 100
	db, _ := openTest(t, Options{MaxEvents: max, NoSync: true})
	noise := []string{contract.EventCodeRejected, contract.EventConsoleCommand, contract.EventReaderFault, contract.EventReaderOK}
	kept := []string{contract.EventBinForced, contract.EventKeyPickedUp, contract.EventBinUnlocked, contract.EventKeyDroppedOff, contract.EventConsoleLogin}
	var wantKept []uint64
	for i := range 5000 {
		typ := noise[i%len(noise)]
		switch {
		case i%50 == 7:
			typ = kept[(i/50)%len(kept)]
		case i%500 == 11:
			typ = contract.EventSettingsChanged // ordinary
		}
		update(t, db, func(tx *Tx) error {
			ev, err := tx.Append(typ, t0, map[string]int{"i": i})
			if contract.ClassOf(typ) == contract.ClassKept {
				wantKept = append(wantKept, ev.Seq)
			}
			return err
		})
		if i == 2500 {
			// An ack half way: the index follows.
			if _, err := db.Ack(2000); err != nil {
				t.Fatal(err)
			}
			wantKept = wantKept[:0]
			for _, r := range pending(t, db, 0, 1000) {
				var ev contract.Event
				json.Unmarshal(r.Payload, &ev)
				if contract.ClassOf(ev.Type) == contract.ClassKept {
					wantKept = append(wantKept, ev.Seq)
				}
			}
		}
	}
	s := stats(t, db)
	if s.Depth > max || s.Depth != countRecords(t, db, bucketOutbox) {
		t.Fatalf("depth %d, %d records, bound %d", s.Depth, countRecords(t, db, bucketOutbox), max)
	}
	have := map[uint64]string{}
	classes := map[contract.EventClass]int{}
	for _, r := range pending(t, db, 0, 1000) {
		var ev contract.Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		have[ev.Seq] = ev.Type
		classes[contract.ClassOf(ev.Type)]++
	}
	for _, seq := range wantKept {
		if _, ok := have[seq]; !ok {
			t.Errorf("event %d (kept class) was dropped", seq)
		}
	}
	if n := countRecords(t, db, bucketOutboxIdx); n != classes[contract.ClassNoise]+classes[contract.ClassOrdinary] {
		t.Errorf("%d index entries for %d noise and %d ordinary events", n, classes[contract.ClassNoise], classes[contract.ClassOrdinary])
	}
	t.Logf("outbox after 5,000 events into %d: %d kept-class, %d ordinary, %d noise", max, classes[contract.ClassKept], classes[contract.ClassOrdinary], classes[contract.ClassNoise])
	if classes[contract.ClassKept] != len(wantKept) || len(wantKept) < 50 {
		t.Errorf("%d kept-class events in the outbox, %d written since the ack", classes[contract.ClassKept], len(wantKept))
	}

	// With nothing but kept-class events left to drop, the oldest go: the
	// bound holds.
	for i := range 2 * max {
		update(t, db, func(tx *Tx) error {
			_, err := tx.Append(contract.EventBinForced, t0, map[string]int{"bin": i})
			return err
		})
	}
	if s := stats(t, db); s.Depth > max {
		t.Fatalf("depth %d past the bound %d", s.Depth, max)
	}
	recs := pending(t, db, 0, 1000)
	var last contract.Event
	json.Unmarshal(recs[len(recs)-1].Payload, &last)
	if last.Type != contract.EventBinForced || string(last.Data) != fmt.Sprintf(`{"bin":%d}`, 2*max-1) {
		t.Fatalf("the newest event is %s %s", last.Type, last.Data)
	}
	if _, err := db.Ack(s.LastSeq + 1000); err != nil {
		t.Fatal(err)
	}
	if n := countRecords(t, db, bucketOutboxIdx); n != 0 {
		t.Fatalf("%d index entries after acking everything", n)
	}
}

func TestClassOf(t *testing.T) {
	for typ, want := range map[string]contract.EventClass{
		contract.EventCodeRejected: contract.ClassNoise, contract.EventConsoleCommand: contract.ClassNoise,
		contract.EventReaderFault: contract.ClassNoise, contract.EventReaderOK: contract.ClassNoise,
		contract.EventBinForced: contract.ClassKept, contract.EventKeyPickedUp: contract.ClassKept,
		contract.EventFobLinked: contract.ClassKept, contract.EventAccessCodeStatus: contract.ClassKept,
		contract.EventConsoleLogin: contract.ClassKept, contract.EventKeypadLockoutEnded: contract.ClassKept,
		contract.EventDeviceStarted: contract.ClassOrdinary, contract.EventOutboxOverflow: contract.ClassOrdinary,
	} {
		if got := contract.ClassOf(typ); got != want {
			t.Errorf("ClassOf(%s) = %d, want %d", typ, got, want)
		}
	}
}
