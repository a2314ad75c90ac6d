package device

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"smartboxd/contract"
	"smartboxd/store"
	"strings"
)

// snapEnv answers the validators' look-ups from the snapshot's own records
// (and the keys kept because they are checked in here), not from the store
// the snapshot replaces.
type snapEnv struct {
	b     *Box
	fobs  map[string]string          // fob -> key id
	codes map[string]store.CodeOwner // keyed hash -> owner
	keys  map[string]bool
}

func (e *snapEnv) fobOwner(s string) string { return e.fobs[s] }

func (e *snapEnv) codeOwner(h []byte) (store.CodeOwner, bool) {
	o, ok := e.codes[string(h)]
	return o, ok
}

func (e *snapEnv) fobInBin(s string) bool { return e.b.fobInBin(s) }

func (e *snapEnv) keyCodesEnabled() bool { return e.b.settings.KeyCodesEnabled }

func (e *snapEnv) keyExists(id string) (bool, error) { return e.keys[id], nil }

func (e *snapEnv) add(k *store.Key) {
	e.keys[k.ID] = true
	if k.Fob != "" {
		e.fobs[k.Fob] = k.ID
	}
	if len(k.CodeHash) > 0 {
		e.codes[string(k.CodeHash)] = store.CodeOwner{Kind: store.OwnerKey, ID: k.ID}
	}
}

// recordErr names the record a snapshot was refused for, keeping the code.
func recordErr(kind string, i int, id string, err error) error {
	e, ok := err.(*contract.Error)
	if !ok {
		return err
	}
	return &contract.Error{Code: e.Code, Message: fmt.Sprintf("%s[%d] (%s): %s", kind, i, id, e.Message)}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// cmdSnapshot replaces every key and access code in one transaction, or
// nothing: the first invalid record refuses the whole snapshot, named in the
// error. What the box knows better than the cloud stays: where keys are
// checked in, fobs linked at drop-off, and keys checked in here that the
// snapshot leaves out (listed in kept_checked_in). Codes whose window has
// passed are skipped and counted. One sync.snapshot_applied event reports it.
func (b *Box) cmdSnapshot(c *txc, data []byte) (any, error) {
	var d struct {
		Version     json.RawMessage  `json:"version"`
		Keys        []keyData        `json:"keys"`
		AccessCodes []accessCodeData `json:"access_codes"`
	}
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	version := strings.Trim(string(d.Version), `"`)
	if len(d.Keys) > b.cfg.MaxKeys {
		return nil, contract.Errorf(contract.CodeKeyLimit, "%d keys, the box holds at most %d", len(d.Keys), b.cfg.MaxKeys)
	}
	if len(d.AccessCodes) > b.cfg.MaxAccessCodes {
		return nil, contract.Errorf(contract.CodeAccessCodeLimit, "%d access codes, the box holds at most %d", len(d.AccessCodes), b.cfg.MaxAccessCodes)
	}
	env := &snapEnv{b: b, fobs: map[string]string{}, codes: map[string]store.CodeOwner{}, keys: map[string]bool{}}
	inSnap := make(map[string]bool, len(d.Keys))
	for i, kd := range d.Keys {
		id := deref(kd.KeyID)
		if id != "" && inSnap[id] {
			return nil, contract.Errorf(contract.CodeCmdInvalid, "keys[%d]: duplicate key_id %q", i, id)
		}
		inSnap[id] = true
	}
	var keys []*store.Key
	var kept []string
	for _, id := range b.binOrder {
		kid := b.bins[id].rec.KeyID
		if kid == "" || inSnap[kid] {
			continue
		}
		k, err := c.tx.Key(kid)
		if err != nil {
			return nil, err
		}
		if k != nil {
			keys = append(keys, k)
			kept = append(kept, kid)
			env.add(k)
		}
	}
	if n := len(kept) + len(d.Keys); n > b.cfg.MaxKeys {
		return nil, contract.Errorf(contract.CodeKeyLimit, "%d keys with the %d checked in here that the snapshot leaves out, the box holds at most %d",
			n, len(kept), b.cfg.MaxKeys)
	}
	generated := map[string]string{}
	for i, kd := range d.Keys {
		id := deref(kd.KeyID)
		var base *store.Key
		if id != "" {
			old, err := c.tx.Key(id)
			if err != nil {
				return nil, err
			}
			if old != nil {
				// A snapshot record is whole: only what the box itself
				// learnt carries over.
				base = &store.Key{ID: old.ID, Fob: old.Fob, Bin: old.Bin, CreatedAt: old.CreatedAt}
				if old.Virtual && kd.KeyCode == nil && kd.KeyCodeSealed == nil {
					base.CodeHash, base.Virtual = old.CodeHash, true
				}
				if kd.SerialNumber != nil && *kd.SerialNumber != "" || (kd.Virtual != nil && *kd.Virtual) {
					if old.Bin == 0 {
						base.Fob = ""
					}
				}
			}
		}
		k, code, err := b.buildKey(kd, base, env, c.now)
		if err != nil {
			return nil, recordErr("keys", i, id, err)
		}
		if code != "" {
			generated[k.ID] = code
		}
		env.add(k)
		keys = append(keys, k)
	}
	var codes []*store.AccessCode
	expired := 0
	seen := make(map[string]bool, len(d.AccessCodes))
	for i, ad := range d.AccessCodes {
		id := deref(ad.AccessCodeID)
		if id != "" && seen[id] {
			return nil, contract.Errorf(contract.CodeCmdInvalid, "access_codes[%d]: duplicate access_code_id %q", i, id)
		}
		seen[id] = true
		if ad.EndsAt != nil && deref(ad.Type) == contract.TypeTimeBound && !c.now.Before(*ad.EndsAt) {
			expired++
			continue
		}
		var old, stored *store.AccessCode
		if id != "" {
			var err error
			if stored, err = c.tx.AccessCode(id); err != nil {
				return nil, err
			}
		}
		if stored != nil && ad.Code == nil && ad.CodeSealed == nil {
			old = &store.AccessCode{ID: stored.ID, CodeHash: stored.CodeHash, CreatedAt: stored.CreatedAt}
		}
		a, err := b.buildAccessCode(ad, old, env, c.now)
		if err != nil {
			return nil, recordErr("access_codes", i, id, err)
		}
		if stored != nil && bytes.Equal(stored.CodeHash, a.CodeHash) {
			// A record is whole, but the entries that used the code are
			// the box's to count: they carry over while the code stays,
			// and a code they used up is not set again.
			a.Uses = stored.Uses
			if a.MaxUses > 0 && a.Uses >= a.MaxUses {
				expired++
				continue
			}
		}
		env.codes[string(a.CodeHash)] = store.CodeOwner{Kind: store.OwnerAccessCode, ID: a.ID}
		codes = append(codes, a)
	}
	if err := c.tx.ReplaceAll(version, keys, codes); err != nil {
		return nil, err
	}
	slices.Sort(kept)
	if kept == nil {
		kept = []string{}
	}
	summary := contract.SnapshotResult{Version: version, Keys: len(keys), AccessCodes: len(codes), Expired: expired, KeptCheckedIn: kept}
	if err := c.event(contract.EventSnapshotApplied, summary); err != nil {
		return nil, err
	}
	c.onCommit(func() { b.armSchedule(0) })
	if len(generated) > 0 {
		summary.GeneratedKeyCodes = generated
	}
	return summary, nil
}
