package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"smartboxd/device"
	"smartboxd/store"
	"smartboxd/sync/mqttlink"
	"smartboxd/trust"
)

// countLocker stands in for a box's lock outputs: it counts the pulses.
type countLocker struct{ n atomic.Int64 }

func (l *countLocker) Unlock(int) error { l.n.Add(1); return nil }

var _ device.Locker = (*countLocker)(nil)

// simBox is one box of the fleet: its own bbolt file, decision loop and
// MQTT link, the same code a box runs, with simulated locks and a keypad
// and fob reader driven by the simulator.
type simBox struct {
	id     string
	db     *store.DB
	box    *device.Box
	link   *mqttlink.Link
	locks  countLocker
	cancel context.CancelFunc
	done   chan error // one value per goroutine: the box and the link

	// The guest cycle (guest.go) and what provisioning gave the box.
	serial, dropCode, pickCode string
	step                       atomic.Int64
}

// boxOptions are what every box of a run shares.
type boxOptions struct {
	dir        string
	brokers    func(i int) []string // the broker list of box i
	cloudKey   ed25519.PublicKey
	ackTimeout time.Duration
	reconnMin  time.Duration
	fsync      bool
	log        *slog.Logger
}

// boxID is the id of box i.
func boxID(i int) string { return fmt.Sprintf("fleet-%05d", i) }

// startBox opens box i's store and starts its decision loop and link.
func startBox(i int, o boxOptions) (*simBox, error) {
	id := boxID(i)
	db, err := store.Open(filepath.Join(o.dir, id), store.Options{BoxID: id, NoSync: !o.fsync})
	if err != nil {
		return nil, fmt.Errorf("box %s: %w", id, err)
	}
	b := &simBox{id: id, db: db, done: make(chan error, 2)}
	box, err := device.New(device.Config{
		BoxID: id, Version: "fleetsim", BootID: fmt.Sprintf("boot-%d", db.Boot()),
		Bins:           []device.BinSpec{{ID: 1}, {ID: 2}},
		FobAbsent:      50 * time.Millisecond,
		DropoffTimeout: 5 * time.Second,
		LockoutAfter:   1 << 20, // the wrong codes of the traffic must not lock it out
		Trust:          device.Trust{Keys: []device.TrustKey{{Name: cloudKid, Public: o.cloudKey, Roles: []trust.Role{trust.RoleAdmin}}}},
		Store:          db, Locks: &b.locks,
		Logger: o.log.With("box", id),
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("box %s: %w", id, err)
	}
	b.box = box
	b.link, err = mqttlink.New(mqttlink.Config{
		Brokers: o.brokers(i), BoxID: id, Version: "fleetsim", BootID: fmt.Sprintf("boot-%d", db.Boot()),
		AckTimeout: o.ackTimeout, ReconnectMin: o.reconnMin,
		Logger: o.log.With("box", id, "part", "mqtt"),
	}, box, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("box %s: %w", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() { b.done <- box.Run(ctx) }()
	go func() { b.done <- b.link.Run(ctx) }()
	return b, nil
}

// stop stops the link and the box and closes the store.
func (b *simBox) stop() error {
	b.cancel()
	var errs []error
	for range 2 {
		if err := <-b.done; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, b.db.Close())
	return errors.Join(errs...)
}

// outbox reads the box's outbox figures.
func (b *simBox) outbox() store.OutboxStats {
	s, err := b.db.OutboxStats()
	if err != nil {
		return store.OutboxStats{}
	}
	return s
}
