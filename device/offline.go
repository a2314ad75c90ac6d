package device

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"smartboxd/contract"
	"smartboxd/offline"
	"smartboxd/store"
)

// Offline codes (contract §8). The box's offline key is kept in the
// database (store.Tx.OfflineKey), written in the transaction that answers
// offline.set_key, and never put in an event, a reply or a log: the reply
// and the offline.key_set event carry only its fingerprint. The loop keeps
// it ready for checks in Box.offKey.
//
// A once-mode code that opened a bin, and a code offline.revoke refused,
// are kept as marks under the keyed hash of the code (store.CodeHash),
// never the code, until the end of the code's window. A mark that has run
// out is ignored where it is read, and the scheduler deletes such marks as
// it runs (at least once a minute, with a synchronised clock).

// offlineUse is a once-mode offline code that opens a bin: its keyed hash
// and the end of its window.
type offlineUse struct {
	hash  []byte
	until time.Time
}

// loadOfflineKey readies the stored offline key, if there is one.
func (b *Box) loadOfflineKey(tx *store.Tx) error {
	raw := tx.OfflineKey()
	if raw == nil {
		b.offKey = nil
		return nil
	}
	k, err := offline.NewKey(raw)
	clear(raw)
	if err != nil {
		return err
	}
	b.offKey = k
	return nil
}

// fingerprint is the short, public name of an offline key: the first 8 hex
// digits of its SHA-256.
func fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// offlineKeyData is offline.set_key's data.
type offlineKeyData struct {
	Key       *string `json:"key"`
	KeySealed *string `json:"key_sealed"`
}

// offlineKeyOf turns the command's data into the offline key. It is the
// one place that reads it: a sealed form (key_sealed) is opened here too.
// Its errors never carry the key.
func (b *Box) offlineKeyOf(d offlineKeyData) ([]byte, error) {
	text, err := b.openCode(d.Key, d.KeySealed, "key")
	if err != nil {
		return nil, err
	}
	if text == nil {
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data.key: required, base64 of %d bytes", offline.KeySize)
	}
	if d.KeySealed != nil && len(*text) == offline.KeySize {
		return []byte(*text), nil // sealed as the key's bytes rather than their base64
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(*text)
	if err != nil {
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data.key: not base64")
	}
	if len(raw) != offline.KeySize {
		clear(raw)
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data.key: %d bytes, want %d", len(raw), offline.KeySize)
	}
	return raw, nil
}

func (b *Box) cmdOfflineSetKey(c *txc, data []byte) (any, error) {
	var d offlineKeyData
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	raw, err := b.offlineKeyOf(d)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	k, err := offline.NewKey(raw)
	if err != nil {
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data.key: %v", err)
	}
	if err := c.tx.PutOfflineKey(raw); err != nil {
		return nil, err
	}
	res := contract.OfflineKeyResult{KeySet: true, Fingerprint: fingerprint(raw)}
	if err := c.event(contract.EventOfflineKeySet, map[string]string{"fingerprint": res.Fingerprint}); err != nil {
		return nil, err
	}
	c.onCommit(func() { b.offKey = k })
	return res, nil
}

// offlineCodeData is offline.revoke's data.
type offlineCodeData struct {
	Code       *string `json:"code"`
	CodeSealed *string `json:"code_sealed"`
}

// offlineCodeOf turns the command's data into the offline code to revoke:
// the one place that reads it, where a sealed form (code_sealed) is opened
// too. Its errors never carry the code.
func (b *Box) offlineCodeOf(d offlineCodeData) (offline.Parsed, string, error) {
	code, err := b.openCode(d.Code, d.CodeSealed, "code")
	if err != nil {
		return offline.Parsed{}, "", err
	}
	if code == nil {
		return offline.Parsed{}, "", contract.Errorf(contract.CodeCmdInvalid, "data.code: required, %d digits", offline.CodeLen)
	}
	p, err := offline.Parse(*code)
	if err != nil {
		return offline.Parsed{}, "", contract.Errorf(contract.CodeCmdInvalid, "data.code: not an offline code (%d digits, mode 1 to 4)", offline.CodeLen)
	}
	return p, *code, nil
}

// cmdOfflineRevoke refuses an offline code until its window ends. The box
// reads the code's window on its own clock, as it would at the keypad; a
// code whose window is over needs no mark and gets none.
func (b *Box) cmdOfflineRevoke(c *txc, data []byte) (any, error) {
	var d offlineCodeData
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	p, code, err := b.offlineCodeOf(d)
	if err != nil {
		return nil, err
	}
	from, to := p.Window(p.Start(c.now))
	res := contract.OfflineRevokeResult{Revoked: c.now.Before(to), From: from, Until: to}
	if res.Revoked {
		if err := c.tx.PutOfflineMark(b.st.CodeHash(code), store.OfflineMark{Kind: store.MarkRevoked, Until: to}); err != nil {
			return nil, err
		}
	}
	if err := c.event(contract.EventOfflineRevoked, res); err != nil {
		return nil, err
	}
	return res, nil
}

// matchOffline decides what a 14-digit entry that is no stored code opens
// as an offline code. A code whose tag matches no candidate key is a wrong
// entry (code.unknown); a right code at the wrong time, used up or revoked
// is not.
func (b *Box) matchOffline(c *txc, entry string, hash []byte) (grant, error) {
	unknown := contract.Errorf(contract.CodeCodeUnknown, "no such code")
	p, err := offline.Parse(entry)
	if err != nil {
		return grant{}, unknown
	}
	if b.cfg.RequireSync && !b.cfg.Synced() {
		return grant{}, contract.Errorf(contract.CodeClockUnsynced, "the clock is not synchronised")
	}
	s := p.Start(c.now)
	var ids []string
	if p.Mode.Pickup() {
		for _, id := range b.binOrder {
			if kid := b.bins[id].rec.KeyID; kid != "" {
				ids = append(ids, kid)
			}
		}
	} else if err := c.tx.ForEachKey(func(k *store.Key) error {
		if k.Bin == 0 {
			ids = append(ids, k.ID)
		}
		return nil
	}); err != nil {
		return grant{}, err
	}
	keyID, ok := b.offKey.Match(b.cfg.BoxID, p, s, ids)
	if !ok {
		return grant{}, unknown
	}
	from, to := p.Window(s)
	switch {
	case c.now.Before(from):
		return grant{}, contract.Errorf(contract.CodeCodeNotActive, "the code is valid from %s", from.Format(time.RFC3339))
	case !c.now.Before(to):
		return grant{}, contract.Errorf(contract.CodeCodeNotActive, "the code ended at %s", to.Format(time.RFC3339))
	}
	if err := offlineMarked(c, hash); err != nil {
		return grant{}, err
	}
	k, err := c.tx.Key(keyID)
	if err != nil {
		return grant{}, err
	}
	if k == nil {
		return grant{}, unknown
	}
	var g grant
	if p.Mode.Pickup() {
		x := b.bins[k.Bin]
		if k.Bin == 0 || x == nil {
			return grant{}, contract.Errorf(contract.CodeKeyNotCheckedIn, "the key is not here")
		}
		g = grant{bin: x, reason: contract.ReasonPickup, sess: session{kind: sessPickup, keyID: k.ID, via: contract.ViaOffline, virtual: k.Virtual}}
	} else {
		x := b.freeBin()
		if x == nil {
			return grant{}, contract.Errorf(contract.CodeNoAvailableBins, "no free bin")
		}
		g = grant{bin: x, reason: contract.ReasonDropoff, sess: session{kind: sessDropoff, keyID: k.ID, via: contract.ViaOffline, virtual: k.Virtual}}
	}
	if p.Mode.Once() {
		g.once = &offlineUse{hash: hash, until: to}
	}
	return g, nil
}

// offlineMarked refuses an offline code the box keeps a mark of.
func offlineMarked(c *txc, hash []byte) error {
	m, ok, err := c.tx.OfflineMark(hash, c.now)
	switch {
	case err != nil:
		return err
	case !ok:
		return nil
	case m.Kind == store.MarkRevoked:
		return contract.Errorf(contract.CodeCodeRevoked, "the code was revoked")
	}
	return contract.Errorf(contract.CodeCodeUsedUp, "the code was used")
}

// checkUse checks, in the transaction that will record it, that the
// entry granted g may still be used: an access code's uses below its
// max_uses, a once-mode offline code not yet marked.
func (b *Box) checkUse(c *txc, g grant) error {
	if g.once != nil {
		if err := offlineMarked(c, g.once.hash); err != nil {
			return err
		}
	}
	if g.sess.acID == "" {
		return nil
	}
	ac, err := c.tx.AccessCode(g.sess.acID)
	switch {
	case err != nil:
		return err
	case ac == nil:
		return contract.Errorf(contract.CodeCodeUnknown, "no such code")
	case ac.Status != contract.StatusSet:
		return contract.Errorf(contract.CodeCodeNotActive, "the code is %s", ac.Status)
	case ac.MaxUses > 0 && ac.Uses >= ac.MaxUses:
		return contract.Errorf(contract.CodeCodeUsedUp, "the code was used %d times", ac.Uses)
	}
	return nil
}

// recordUse counts the entry granted g, in the transaction that opens the
// bin: an access code's use (the code is removed, with its status events,
// when that was its last), a once-mode offline code's mark.
func (b *Box) recordUse(c *txc, g grant) error {
	if g.once != nil {
		if err := c.tx.PutOfflineMark(g.once.hash, store.OfflineMark{Kind: store.MarkUsed, Until: g.once.until}); err != nil {
			return err
		}
	}
	if g.sess.acID == "" {
		return nil
	}
	ac, err := c.tx.AccessCode(g.sess.acID)
	if err != nil || ac == nil {
		return err
	}
	ac.Uses++
	if ac.MaxUses > 0 && ac.Uses >= ac.MaxUses {
		return removeCode(c, ac)
	}
	return c.tx.PutAccessCode(ac)
}

// pruneOffline deletes offline marks whose window has ended.
func pruneOffline(c *txc) error {
	_, err := c.tx.PruneOfflineMarks(c.now, scheduleBatch)
	return err
}
