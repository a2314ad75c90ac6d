package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/internal/config"
	"smartboxd/store"
)

// dbCommand runs an offline database command: the daemon must be stopped
// (the database's lock says so if it is not).
//
//	db check     bbolt's consistency check
//	db compact   rewrite the file without free pages
//	db export    bins, keys and access codes as JSON (never the codes)
func dbCommand(cfg *config.Config, args []string, out io.Writer) error {
	if len(args) != 2 || args[0] != "db" {
		return &exitError{code: 2, err: errors.New("usage: smartboxd -config FILE [-check] | db check|compact|export")}
	}
	switch args[1] {
	case "check":
		return dbCheck(cfg, out)
	case "compact":
		return dbCompact(cfg, out)
	case "export":
		return dbExport(cfg, out)
	}
	return &exitError{code: 2, err: fmt.Errorf("db: unknown command %q (check, compact, export)", args[1])}
}

func dbCheck(cfg *config.Config, out io.Writer) error {
	db, err := store.Open(cfg.DataDir, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	n := 0
	err = db.Bolt().View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			fmt.Fprintln(out, "problem:", e)
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("db check: %d problem(s) in %s", n, cfg.DBPath())}
	}
	fmt.Fprintf(out, "%s: ok\n", cfg.DBPath())
	return nil
}

func dbCompact(cfg *config.Config, out io.Writer) error {
	src := cfg.DBPath()
	before, err := os.Stat(src)
	if err != nil {
		return err
	}
	// Hold the database's lock for the whole rewrite: a running daemon
	// makes this fail rather than lose its writes.
	sdb, err := bolt.Open(src, 0o600, &bolt.Options{Timeout: store.DefaultTimeout})
	if err != nil {
		return fmt.Errorf("db compact: open %s: %w", src, err)
	}
	defer sdb.Close()
	tmp := filepath.Join(filepath.Dir(src), ".compact-"+filepath.Base(src))
	os.Remove(tmp)
	ddb, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		return err
	}
	if err := bolt.Compact(ddb, sdb, 64<<20); err != nil {
		ddb.Close()
		os.Remove(tmp)
		return fmt.Errorf("db compact: %w", err)
	}
	if err := ddb.Sync(); err != nil {
		ddb.Close()
		return err
	}
	ddb.Close()
	if err := os.Rename(tmp, src); err != nil {
		return err
	}
	// Until the directory is synced a power cut can bring the old file
	// back under the name — and with it lose every commit the next daemon
	// makes to the new one.
	if err := syncDir(filepath.Dir(src)); err != nil {
		return fmt.Errorf("db compact: %w", err)
	}
	after, err := os.Stat(src)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d -> %d bytes\n", src, before.Size(), after.Size())
	return nil
}

// export is what db export writes: enough for support, no secrets.
type export struct {
	BoxID       string                    `json:"box_id"`
	Bins        []store.Bin               `json:"bins"`
	Keys        []contract.KeyView        `json:"keys"`
	AccessCodes []contract.AccessCodeView `json:"access_codes"`
	Settings    contract.Settings         `json:"settings"`
	Outbox      store.OutboxStats         `json:"outbox"`
}

func dbExport(cfg *config.Config, out io.Writer) error {
	db, err := store.Open(cfg.DataDir, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	e := export{BoxID: cfg.BoxID, Keys: []contract.KeyView{}, AccessCodes: []contract.AccessCodeView{}}
	err = db.View(func(tx *store.Tx) error {
		for _, id := range cfg.BinIDs() {
			b, err := tx.Bin(id)
			if err != nil {
				return err
			}
			e.Bins = append(e.Bins, b)
		}
		if err := tx.ForEachKey(func(k *store.Key) error { e.Keys = append(e.Keys, device.ViewKey(k)); return nil }); err != nil {
			return err
		}
		if err := tx.ForEachAccessCode(func(a *store.AccessCode) error {
			e.AccessCodes = append(e.AccessCodes, device.ViewAccessCode(a))
			return nil
		}); err != nil {
			return err
		}
		var err error
		e.Settings, err = tx.Settings()
		e.Outbox = tx.OutboxStats()
		return err
	})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(e)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
