package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"smartboxd/contract"
	"smartboxd/store"
)

// snapEnv answers the validators' look-ups from the snapshot's own records
// as staged so far (and the keys kept because they are checked in here),
// not from the store the snapshot replaces.
type snapEnv struct {
	b *Box
	r *snapRun
}

func (e *snapEnv) fobOwner(s string) string { return e.r.fobs[s] }

func (e *snapEnv) codeOwner(h []byte) (store.CodeOwner, bool) {
	o, ok := e.r.owners[string(h)]
	return o, ok
}

func (e *snapEnv) fobInBin(s string) bool { return e.b.fobInBin(s) }

func (e *snapEnv) keyCodesEnabled() bool { return e.b.settings.KeyCodesEnabled }

func (e *snapEnv) keyExists(id string) (bool, error) { return e.r.inSnap[id] || e.r.keptSet[id], nil }

// staged notes a staged key in the look-ups.
func (r *snapRun) stagedKey(k *store.Key) {
	if k.Fob != "" {
		r.fobs[k.Fob] = k.ID
	}
	if len(k.CodeHash) > 0 {
		r.owners[string(k.CodeHash)] = store.CodeOwner{Kind: store.OwnerKey, ID: k.ID}
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

// A sync.snapshot replaces every key and access code, or nothing: the first
// invalid record refuses the whole snapshot, named in the error. What the
// box knows better than the cloud stays: where keys are checked in, fobs
// linked at drop-off, and keys checked in here that the snapshot leaves out
// (listed in kept_checked_in). Codes whose window has passed are skipped
// and counted. One sync.snapshot_applied event reports it.
//
// The data is decoded as a stream, one record at a time, and every limit is
// enforced as the records come, so a huge payload is refused before it
// costs memory. The records are staged, SnapshotChunk per transaction, and
// the decision loop serves keypad entries and everything else between two
// chunks; the last transaction swaps the stage for the live records, with
// the event and the reply. A snapshot that spans several transactions is
// marked running first: one cut short by a crash is answered internal when
// it comes again, and not run again.

// A snapshot payload above bigSnapshot bytes is applied with the garbage
// collector's target at snapshotGCPercent.
const (
	bigSnapshot       = 4 << 20
	snapshotGCPercent = 50
)

// snapRun is one snapshot being applied.
type snapRun struct {
	cmd     contract.Command
	from    origin
	version string
	inSnap  map[string]bool // the snapshot's key ids
	keptSet map[string]bool
	// What the validators look up, kept in memory: reading it back from
	// the stage would touch its pages at random.
	fobs    map[string]string          // fob -> staged key id
	owners  map[string]store.CodeOwner // keyed hash -> staged owner
	codeIDs map[string]bool            // access code ids read
	// The access codes read, encoded, staged in id order once every
	// record is read (or pendingLimit bytes of them): in the order they
	// come they would leave the stage's pages half empty.
	pending      []store.EncodedAccessCode
	pendingBytes int
	sorted       bool          // pending is sorted and being staged
	written      int           // how many of pending are staged
	index        []string      // the hashes of codes, sorted, once every record is staged
	indexed      int           // how many of index are staged
	keys         *json.Decoder // nil once read
	codes        *json.Decoder
	ki, ci       int // records read
	began        bool
	staged       bool // every record is staged (and committed)
	kept         []string
	result       contract.SnapshotResult
	gen          map[string]string
}

// executeSnapshot runs a snapshot command in chunks, each one turn of the
// decision loop, and returns its reply.
func (b *Box) executeSnapshot(ctx context.Context, cmd contract.Command, from origin) (contract.Reply, error) {
	if len(cmd.Data) > bigSnapshot {
		// The payload is most of the live heap and holds no pointers:
		// collecting more often is cheap, and keeps the peak near it
		// rather than at twice it.
		defer debug.SetGCPercent(debug.SetGCPercent(snapshotGCPercent))
	}
	var reply contract.Reply
	var r *snapRun
	if err := b.call(ctx, func() { reply, r = b.startSnapshot(cmd, from) }); err != nil || r == nil {
		return reply, err
	}
	for done := false; !done; {
		if err := b.call(ctx, func() { reply, done = b.snapshotChunk(r) }); err != nil {
			return contract.Reply{}, err
		}
	}
	return reply, nil
}

// startSnapshot answers a snapshot that needs no run (a repeated id, an
// expired or malformed one, one cut short by a crash), or returns its run.
func (b *Box) startSnapshot(cmd contract.Command, from origin) (contract.Reply, *snapRun) {
	if r, done := b.seen(cmd, from); done {
		return r, nil
	}
	var running string
	if err := b.st.View(func(tx *store.Tx) error {
		running = tx.Running()
		return nil
	}); err != nil {
		return contract.ErrorReply(cmd.ID, contract.Errorf(contract.CodeStoreUnavailable, "%v", err)), nil
	}
	if running == cmd.ID {
		b.log.Warn("snapshot cut short by a restart; answered, not run again", "id", cmd.ID)
		return b.snapshotCutShort(cmd, from), nil
	}
	if cmd.ExpiresAt != nil && !b.clock.Now().Before(*cmd.ExpiresAt) {
		return b.snapshotFailed(cmd, from, contract.Errorf(contract.CodeCmdExpired, "the command expired at %s", cmd.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z07:00"))), nil
	}
	var r *snapRun
	err := b.st.View(func(tx *store.Tx) error {
		var err error
		r, err = b.newSnapRun(tx, cmd)
		return err
	})
	if err != nil {
		return b.snapshotFailed(cmd, from, err), nil
	}
	r.from = from
	return contract.Reply{}, r
}

// snapshotChunk stages the next chunk of r, and swaps the stage in when the
// records are all read. It returns the reply once r is done.
func (b *Box) snapshotChunk(r *snapRun) (contract.Reply, bool) {
	var reply contract.Reply
	if !r.staged {
		err := b.txn(func(c *txc) error {
			var err error
			r.staged, err = r.step(b, c, b.cfg.SnapshotChunk)
			return err
		})
		if err != nil {
			return b.snapshotFailed(r.cmd, r.from, err), true
		}
		return reply, false
	}
	// The swap has a transaction of its own: bbolt moves a bucket as last
	// committed, so the records must be committed first.
	err := b.txn(func(c *txc) error {
		result, err := r.finish(b, c)
		if err != nil {
			return err
		}
		wire, stored, err := contract.OKReply(r.cmd.ID, result)
		if err != nil {
			return err
		}
		reply = wire
		return b.keepReply(c.tx, r.cmd, r.from, stored)
	})
	if err != nil {
		return b.snapshotFailed(r.cmd, r.from, err), true
	}
	return reply, true
}

// snapshotCutShort answers a snapshot that was running when the box went
// down: internal, kept for the id like any answer, and the stage dropped.
func (b *Box) snapshotCutShort(cmd contract.Command, from origin) contract.Reply {
	r := contract.ErrorReply(cmd.ID, contract.Errorf(contract.CodeInternal,
		"the box restarted while applying this snapshot; nothing was applied, send it again with a new id"))
	if err := b.commit(func(tx *store.Tx) error {
		if err := tx.DropStage(); err != nil {
			return err
		}
		if err := tx.SetRunning(""); err != nil {
			return err
		}
		return b.keepReply(tx, cmd, from, r.Encode())
	}); err != nil {
		b.log.Error("snapshot: stage not dropped", "err", err)
	}
	return r
}

// snapshotFailed drops any stage and the running mark, and keeps the reply
// for a repeated id when the refusal is the snapshot's own.
func (b *Box) snapshotFailed(cmd contract.Command, from origin, err error) contract.Reply {
	a, keep := failed(cmd.ID, err)
	if e := b.commit(func(tx *store.Tx) error {
		if err := tx.DropStage(); err != nil {
			return err
		}
		if err := tx.SetRunning(""); err != nil {
			return err
		}
		if keep {
			return b.keepReply(tx, cmd, from, a.stored)
		}
		return nil
	}); e != nil {
		b.log.Error("snapshot: stage not dropped", "err", e)
	}
	return a.reply
}

// newSnapRun splits the data and reads the snapshot's key ids (refusing a
// duplicate and too many keys before anything is staged).
func (b *Box) newSnapRun(tx *store.Tx, cmd contract.Command) (*snapRun, error) {
	data := cmd.Data
	if len(data) == 0 {
		data = []byte("{}")
	}
	m, err := contract.Members(data)
	if err != nil {
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data: %v", err)
	}
	r := &snapRun{cmd: cmd, inSnap: map[string]bool{}, keptSet: map[string]bool{}, gen: map[string]string{},
		fobs: map[string]string{}, owners: map[string]store.CodeOwner{}, codeIDs: map[string]bool{}}
	for name, raw := range m {
		switch name {
		case "version":
			r.version = strings.Trim(string(raw), `"`)
		case "keys", "access_codes":
			if raw[0] != '[' && string(raw) != "null" {
				return nil, contract.Errorf(contract.CodeCmdInvalid, "data.%s: expected an array", name)
			}
		default:
			return nil, contract.Errorf(contract.CodeCmdInvalid, "data: unknown field %q", name)
		}
	}
	if r.keys, err = arrayDecoder(m["keys"]); err != nil {
		return nil, err
	}
	if r.codes, err = arrayDecoder(m["access_codes"]); err != nil {
		return nil, err
	}
	// The key ids first, to know which checked-in keys the snapshot leaves
	// out: those are staged first, as a snapshot record may not take their
	// fob or code.
	ids, err := arrayDecoder(m["keys"])
	if err != nil {
		return nil, err
	}
	for i := 0; ids != nil && ids.More(); i++ {
		if i >= b.cfg.MaxKeys {
			return nil, contract.Errorf(contract.CodeKeyLimit, "more than %d keys, the box holds at most %d", i, b.cfg.MaxKeys)
		}
		var kd keyIDOnly
		if err := ids.Decode(&kd); err != nil {
			return nil, decodeErr("keys", i, err)
		}
		id := deref(kd.KeyID)
		if id != "" && r.inSnap[id] {
			return nil, contract.Errorf(contract.CodeCmdInvalid, "keys[%d]: duplicate key_id %q", i, id)
		}
		r.inSnap[id] = true
	}
	for _, id := range b.binOrder {
		if kid := b.bins[id].rec.KeyID; kid != "" && !r.inSnap[kid] {
			r.kept = append(r.kept, kid)
			r.keptSet[kid] = true
		}
	}
	return r, nil
}

// keyIDOnly is a snapshot key record as its first pass reads it.
type keyIDOnly struct {
	KeyID *string `json:"key_id"`
}

func (k *keyIDOnly) UnmarshalJSON(raw []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	if v, ok := m["key_id"]; ok {
		return json.Unmarshal(v, &k.KeyID)
	}
	return nil
}

// arrayDecoder is a decoder positioned inside the JSON array raw (nil for
// an absent or null array), refusing unknown fields in its elements.
func arrayDecoder(raw []byte) (*json.Decoder, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if _, err := dec.Token(); err != nil {
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data: %v", err)
	}
	return dec, nil
}

// decodeErr is a record that does not decode, as cmd.invalid naming it.
func decodeErr(kind string, i int, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return contract.Errorf(contract.CodeCmdInvalid, "data.%s[%d].%s: expected %s, got %s", kind, i, te.Field, te.Type, te.Value)
	}
	return contract.Errorf(contract.CodeCmdInvalid, "data.%s[%d]: %v", kind, i, err)
}

// step stages up to budget records in c and reports
// whether every record is staged.
func (r *snapRun) step(b *Box, c *txc, budget int) (bool, error) {
	env := &snapEnv{b: b, r: r}
	n := 0
	more := func() bool { return n < budget }
	if !r.began {
		if err := c.tx.BeginStage(); err != nil {
			return false, err
		}
		if err := c.tx.SetRunning(r.cmd.ID); err != nil {
			return false, err
		}
		for _, kid := range r.kept {
			k, err := c.tx.Key(kid)
			if err != nil {
				return false, err
			}
			if k != nil {
				if err := c.tx.StageKey(k); err != nil {
					return false, err
				}
				r.stagedKey(k)
			}
		}
		r.began = true
	}
	for ; r.keys != nil && more(); n++ {
		if !r.keys.More() {
			r.keys = nil
			break
		}
		i := r.ki
		r.ki++
		var kd keyData
		if err := r.keys.Decode(&kd); err != nil {
			return false, decodeErr("keys", i, err)
		}
		if err := r.stageKey(b, c, env, i, kd); err != nil {
			return false, err
		}
	}
	if r.sorted {
		// A run of codes over pendingLimit is being staged.
		if done, err := r.flush(c, budget); !done || err != nil {
			return false, err
		}
	}
	for ; r.keys == nil && r.codes != nil && more() && r.pendingBytes < pendingLimit; n++ {
		if !r.codes.More() {
			r.codes = nil
			break
		}
		i := r.ci
		r.ci++
		if i >= b.cfg.MaxAccessCodes {
			return false, contract.Errorf(contract.CodeAccessCodeLimit, "more than %d access codes, the box holds at most %d", i, b.cfg.MaxAccessCodes)
		}
		var ad accessCodeData
		if err := r.codes.Decode(&ad); err != nil {
			return false, decodeErr("access_codes", i, err)
		}
		if err := r.stageCode(b, c, env, i, ad); err != nil {
			return false, err
		}
	}
	if r.keys != nil || r.codes != nil {
		if r.pendingBytes >= pendingLimit {
			_, err := r.flush(c, budget)
			return false, err
		}
		return false, nil
	}
	// The access codes, in id order, then the code index, in hash order.
	if done, err := r.flush(c, budget); !done || err != nil {
		return false, err
	}
	if r.index == nil {
		r.index = make([]string, 0, len(r.owners))
		for h := range r.owners {
			r.index = append(r.index, h)
		}
		slices.Sort(r.index)
	}
	for end := min(len(r.index), r.indexed+indexChunk*budget); r.indexed < end; r.indexed++ {
		h := r.index[r.indexed]
		if err := c.tx.StageCodeIndex([]byte(h), r.owners[h]); err != nil {
			return false, err
		}
	}
	return r.indexed == len(r.index), nil
}

// flush stages the pending access codes in id order, a chunk per call, and
// reports whether none are left.
func (r *snapRun) flush(c *txc, budget int) (bool, error) {
	if !r.sorted {
		slices.SortFunc(r.pending, func(x, y store.EncodedAccessCode) int { return bytes.Compare(x.ID(), y.ID()) })
		r.sorted = true
	}
	for end := min(len(r.pending), r.written+indexChunk*budget); r.written < end; r.written++ {
		if err := c.tx.StageEncoded(r.pending[r.written]); err != nil {
			return false, err
		}
	}
	if r.written < len(r.pending) {
		return false, nil
	}
	r.pending, r.written, r.pendingBytes, r.sorted = nil, 0, 0, false
	return true, nil
}

// pendingLimit bounds the encoded access codes a snapshot holds before it
// stages them (100,000 codes take about 14 MB); a larger snapshot is staged
// in several sorted runs.
const pendingLimit = 16 << 20

// indexChunk is how many code index entries (or encoded access codes) are
// staged per record of a chunk: they go in in order, and are neither
// decoded nor checked again.
const indexChunk = 5

func (r *snapRun) stageKey(b *Box, c *txc, env *snapEnv, i int, kd keyData) error {
	id := deref(kd.KeyID)
	var base *store.Key
	if id != "" {
		old, err := c.tx.Key(id)
		if err != nil {
			return err
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
		return recordErr("keys", i, id, err)
	}
	if code != "" {
		r.gen[k.ID] = code
	}
	if err := c.tx.StageKey(k); err != nil {
		return err
	}
	r.stagedKey(k)
	return nil
}

func (r *snapRun) stageCode(b *Box, c *txc, env *snapEnv, i int, ad accessCodeData) error {
	id := deref(ad.AccessCodeID)
	if id != "" && r.codeIDs[id] {
		return contract.Errorf(contract.CodeCmdInvalid, "access_codes[%d]: duplicate access_code_id %q", i, id)
	}
	r.codeIDs[id] = true
	if ad.EndsAt != nil && deref(ad.Type) == contract.TypeTimeBound && !c.now.Before(*ad.EndsAt) {
		r.result.Expired++
		return nil
	}
	var old, stored *store.AccessCode
	if id != "" {
		var err error
		if stored, err = c.tx.AccessCode(id); err != nil {
			return err
		}
	}
	if stored != nil && ad.Code == nil && ad.CodeSealed == nil {
		old = &store.AccessCode{ID: stored.ID, CodeHash: stored.CodeHash, CreatedAt: stored.CreatedAt}
	}
	a, err := b.buildAccessCode(ad, old, env, c.now)
	if err != nil {
		return recordErr("access_codes", i, id, err)
	}
	if stored != nil && bytes.Equal(stored.CodeHash, a.CodeHash) {
		// A record is whole, but the entries that used the code are the
		// box's to count: they carry over while the code stays, and a
		// code they used up is not set again.
		a.Uses = stored.Uses
		if a.MaxUses > 0 && a.Uses >= a.MaxUses {
			r.result.Expired++
			return nil
		}
	}
	e := store.EncodeAccessCode(a)
	r.pending = append(r.pending, e)
	r.pendingBytes += e.Size()
	r.owners[string(a.CodeHash)] = store.CodeOwner{Kind: store.OwnerAccessCode, ID: a.ID}
	return nil
}

// finish swaps the stage in and reports it, in c.
func (r *snapRun) finish(b *Box, c *txc) (any, error) {
	keys, codes := c.tx.StagedCounts()
	if err := c.tx.CommitStage(r.version); err != nil {
		return nil, err
	}
	if err := c.tx.SetRunning(""); err != nil {
		return nil, err
	}
	kept := slices.Clone(r.kept)
	slices.Sort(kept)
	if kept == nil {
		kept = []string{}
	}
	summary := contract.SnapshotResult{Version: r.version, Keys: keys, AccessCodes: codes, Expired: r.result.Expired, KeptCheckedIn: kept}
	if err := c.event(contract.EventSnapshotApplied, summary); err != nil {
		return nil, err
	}
	c.onCommit(func() {
		b.armSchedule(0)
		if b.cfg.SnapshotApplied != nil {
			b.cfg.SnapshotApplied()
		}
	})
	if len(r.gen) > 0 {
		summary.GeneratedKeyCodes = r.gen
	}
	return summary, nil
}
