package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"smartboxd/contract"
	"smartboxd/internal/weekly"
	"smartboxd/store"
)

// validateCode checks a keypad entry or a code given in a command: 4 to 16
// digits.
func validateCode(s string) error {
	for _, r := range s {
		if r < '0' || r > '9' {
			return contract.Errorf(contract.CodeCodeNotNumeric, "codes are digits only")
		}
	}
	if n := utf8.RuneCountInString(s); n < 4 || n > 16 {
		return contract.Errorf(contract.CodeCodeInvalidLength, "codes are 4 to 16 digits, not %d", n)
	}
	return nil
}

// ViewAccessCode is a's public object.
func ViewAccessCode(a *store.AccessCode) contract.AccessCodeView {
	v := contract.AccessCodeView{AccessCodeID: a.ID, Name: a.Name, Type: a.Type, Status: a.Status,
		StartsAt: a.StartsAt, EndsAt: a.EndsAt, CreatedAt: a.CreatedAt, KeyID: a.KeyID, Action: a.Action,
		Uses: a.Uses, Schedule: bytes.Clone(a.Schedule),
		Errors: []contract.NoticeView{}, Warnings: []contract.NoticeView{}}
	if a.MaxUses > 0 {
		n := a.MaxUses
		v.MaxUses = &n
	}
	for _, n := range a.Errors {
		v.Errors = append(v.Errors, contract.NoticeView{ErrorCode: n.Code, Message: n.Message, CreatedAt: n.CreatedAt})
	}
	for _, n := range a.Warnings {
		v.Warnings = append(v.Warnings, contract.NoticeView{WarningCode: n.Code, Message: n.Message, CreatedAt: n.CreatedAt})
	}
	return v
}

var noticeText = map[string]string{
	contract.CodeFailedToSetOnDevice: "the box could not store the code",
	contract.CodeDelayInSetting:      "the code was set later than its start",
	contract.CodeDelayInRemoving:     "the code was removed later than its end",

	contract.CodeRestoredAfterClockJump: "the code was removed while the clock ran ahead, and is back now the clock is inside its window",
}

func notice(code string, now time.Time) store.Notice {
	return store.Notice{Code: code, Message: noticeText[code], CreatedAt: now.UTC().Truncate(time.Second)}
}

// statusEvent appends an access_code.status event with a's object.
func statusEvent(c *txc, a *store.AccessCode) error {
	return c.event(contract.EventAccessCodeStatus, ViewAccessCode(a))
}

// initialStatus is a new or changed code's status at now: ongoing codes are
// set at once; time-bound ones are unset before their window and set in it.
func initialStatus(a *store.AccessCode, now time.Time) string {
	if a.Type == contract.TypeTimeBound && now.Before(*a.StartsAt) {
		return contract.StatusUnset
	}
	return contract.StatusSet
}

// removeCode takes a through removing to removed and deletes it.
func removeCode(c *txc, a *store.AccessCode) error {
	a.Status = contract.StatusRemoving
	if err := statusEvent(c, a); err != nil {
		return err
	}
	if err := c.tx.DeleteAccessCode(a.ID); err != nil {
		return err
	}
	a.Status = contract.StatusRemoved
	return statusEvent(c, a)
}

// transition moves a time-bound code along its lifecycle as far as now
// allows: unset -> setting -> set at starts_at, set -> removing -> removed at
// ends_at, each step an access_code.status event. A step later than
// LateAfter carries the delay warning of the model.
func (b *Box) transition(c *txc, a *store.AccessCode) error {
	now := c.now
	if a.Type != contract.TypeTimeBound || a.StartsAt == nil || a.EndsAt == nil {
		return nil
	}
	if a.Status == contract.StatusUnset || a.Status == contract.StatusSetting {
		if now.Before(*a.StartsAt) {
			return nil
		}
		if !now.Before(*a.EndsAt) {
			// The box missed the whole window (it was off).
			a.Warnings = append(a.Warnings, notice(contract.CodeDelayInRemoving, now))
			return removeCode(c, a)
		}
		if now.Sub(*a.StartsAt) > b.cfg.LateAfter {
			a.Warnings = append(a.Warnings, notice(contract.CodeDelayInSetting, now))
		}
		a.Status = contract.StatusSetting
		if err := statusEvent(c, a); err != nil {
			return err
		}
		a.Status = contract.StatusSet
		if err := c.tx.PutAccessCode(a); err != nil {
			return err
		}
		return statusEvent(c, a)
	}
	if now.Before(*a.EndsAt) {
		return nil
	}
	if now.Sub(*a.EndsAt) > b.cfg.LateAfter {
		a.Warnings = append(a.Warnings, notice(contract.CodeDelayInRemoving, now))
	}
	return removeCode(c, a)
}

// armSchedule runs the scheduler after d (replacing any earlier arming).
func (b *Box) armSchedule(d time.Duration) {
	b.schedTimer.Stop()
	b.schedTimer = b.after(d, b.runSchedule)
}

// runSchedule applies every transition that is due and sleeps until the
// next one. It looks at the schedule's first entries only, never at every
// code, and wakes at least once a minute so that a clock that jumps (NTP
// after a boot in 1970) is noticed.
func (b *Box) runSchedule() {
	if b.cfg.RequireSync && !b.cfg.Synced() {
		b.armSchedule(scheduleIdle)
		return
	}
	var due []store.ScheduleEntry
	var next, at time.Time
	err := b.txn(func(c *txc) error {
		at = c.now
		if err := pruneOffline(c); err != nil {
			return err
		}
		if err := b.restoreRemoved(c); err != nil {
			return err
		}
		due, next = c.tx.Due(c.now, scheduleBatch)
		for _, e := range due {
			a, err := c.tx.AccessCode(e.ID)
			if err != nil {
				return err
			}
			if a == nil || !a.NextTransition().Equal(e.At) {
				if err := c.tx.Unschedule(e); err != nil { // stale entry
					return err
				}
				continue
			}
			before := *a
			before.Warnings = slices.Clone(a.Warnings)
			if err := b.transition(c, a); err != nil {
				return err
			}
			if a.Status == contract.StatusRemoved {
				// Kept a while: the clock that removed it may have jumped.
				if err := c.tx.PutTombstone(&store.Tombstone{Code: before, RemovedAt: c.now.Round(0).UTC()}); err != nil {
					return err
				}
			}
		}
		// The next wake-up is read after the transitions: one that set a
		// code has just scheduled its ends_at, which may come before
		// anything that was scheduled when the batch was read.
		_, next = c.tx.Due(c.now, 0)
		return nil
	})
	switch {
	case err != nil:
		b.armSchedule(scheduleRetry)
	case len(due) == scheduleBatch:
		b.armSchedule(0)
	case next.IsZero():
		b.armSchedule(scheduleIdle)
	case !next.After(at):
		// Still due after a batch that was not full: an entry no
		// transition moved. Try again soon rather than spin.
		b.armSchedule(retryAfter)
	default:
		b.armSchedule(min(max(next.Sub(b.clock.Now()), 0), scheduleIdle))
	}
}

// restoreRemoved brings back the time-bound codes the schedule removed while
// the clock ran ahead, now that it is back before their ends_at, each
// reported by an access_code.status with the restored_after_clock_jump
// warning; and it lets go of tombstones past RemovedRetention. A code whose
// id or code was given to another since stays removed.
func (b *Box) restoreRemoved(c *txc) error {
	back, err := c.tx.Restorable(c.now, scheduleBatch)
	if err != nil {
		return err
	}
	for _, ts := range back {
		if err := c.tx.DeleteTombstone(ts.Code.ID); err != nil {
			return err
		}
		live, err := c.tx.AccessCode(ts.Code.ID)
		if err != nil {
			return err
		}
		if live != nil {
			continue
		}
		if _, taken := c.tx.CodeOwner(ts.Code.CodeHash); taken {
			continue
		}
		a := ts.Code
		a.Errors = nil
		a.Status = initialStatus(&a, c.now)
		a.Warnings = append(slices.Clone(a.Warnings), notice(contract.CodeRestoredAfterClockJump, c.now))
		if err := c.tx.PutAccessCode(&a); err != nil {
			return err
		}
		if err := statusEvent(c, &a); err != nil {
			return err
		}
		b.log.Warn("access code restored after a clock jump", "access_code_id", a.ID)
	}
	_, err = c.tx.PruneTombstones(c.now.Add(-b.cfg.RemovedRetention), scheduleBatch)
	return err
}

type accessCodeData struct {
	AccessCodeID *string    `json:"access_code_id"`
	Code         *string    `json:"code"`
	CodeSealed   *string    `json:"code_sealed"`
	Name         *string    `json:"name"`
	Type         *string    `json:"type"`
	StartsAt     *time.Time `json:"starts_at"`
	EndsAt       *time.Time `json:"ends_at"`
	KeyID        *string    `json:"key_id"`
	Action       *string    `json:"action"`
	// MaxUses and IsOneTimeUse limit the entries that may open a bin for
	// the code (§8); absent, they keep an existing code's limit.
	MaxUses      *int  `json:"max_uses"`
	IsOneTimeUse *bool `json:"is_one_time_use"`
	// Schedule is the weekly schedule; absent keeps an existing code's,
	// null removes it.
	Schedule json.RawMessage `json:"schedule"`
}

// acEnv is what access-code validation looks up.
type acEnv interface {
	codeOwner(hash []byte) (store.CodeOwner, bool)
	keyExists(id string) (bool, error)
}

type txACEnv struct{ c *txc }

func (e txACEnv) codeOwner(h []byte) (store.CodeOwner, bool) { return e.c.tx.CodeOwner(h) }

func (e txACEnv) keyExists(id string) (bool, error) {
	k, err := e.c.tx.Key(id)
	return k != nil, err
}

// buildAccessCode validates d against old (nil for a new code) and returns
// the record to write, its status set for now.
func (b *Box) buildAccessCode(d accessCodeData, old *store.AccessCode, env acEnv, now time.Time) (*store.AccessCode, error) {
	code, err := b.openCode(d.Code, d.CodeSealed, "code")
	if err != nil {
		return nil, err
	}
	d.Code, d.CodeSealed = code, nil
	bad := func(format string, args ...any) (*store.AccessCode, error) {
		return nil, contract.Errorf(contract.CodeAccessCodeInvalid, format, args...)
	}
	if d.AccessCodeID == nil || strings.TrimSpace(*d.AccessCodeID) == "" {
		return bad("access_code_id: required")
	}
	if len(*d.AccessCodeID) > contract.MaxIDLen {
		return bad("access_code_id: longer than %d bytes", contract.MaxIDLen)
	}
	a := &store.AccessCode{ID: *d.AccessCodeID, CreatedAt: now.UTC().Truncate(time.Second)}
	if old != nil {
		cp := *old
		a = &cp
		a.Errors, a.Warnings = nil, nil
	}
	set(&a.Name, d.Name)
	set(&a.Type, d.Type)
	set(&a.Action, d.Action)
	set(&a.KeyID, d.KeyID)
	if d.Type != nil || d.StartsAt != nil || d.EndsAt != nil {
		a.StartsAt, a.EndsAt = d.StartsAt, d.EndsAt
	}
	if utf8.RuneCountInString(a.Name) > 200 {
		return bad("name: longer than 200 characters")
	}
	switch a.Type {
	case contract.TypeOngoing:
		if a.StartsAt != nil || a.EndsAt != nil {
			return bad("an ongoing code has no starts_at or ends_at")
		}
	case contract.TypeTimeBound:
		if a.StartsAt == nil || a.EndsAt == nil {
			return bad("a time_bound code needs starts_at and ends_at")
		}
		if !a.EndsAt.After(*a.StartsAt) {
			return bad("ends_at must be after starts_at")
		}
		if !now.Before(*a.EndsAt) {
			return bad("ends_at is in the past")
		}
		s, e := a.StartsAt.UTC(), a.EndsAt.UTC()
		a.StartsAt, a.EndsAt = &s, &e
	case "":
		return bad("type: required (ongoing or time_bound)")
	default:
		return bad("type: must be ongoing or time_bound")
	}
	switch a.Action {
	case contract.ActionPickup, contract.ActionDropoff:
	case "":
		return bad("action: required (pickup or dropoff)")
	default:
		return bad("action: must be pickup or dropoff")
	}
	if a.KeyID == "" {
		return bad("key_id: required")
	}
	if ok, err := env.keyExists(a.KeyID); err != nil {
		return nil, err
	} else if !ok {
		return nil, contract.Errorf(contract.CodeKeyNotFound, "no key %q", a.KeyID)
	}
	switch {
	case d.Code != nil:
		if err := validateCode(*d.Code); err != nil {
			return nil, err
		}
		a.CodeHash = b.st.CodeHash(*d.Code)
	case old == nil:
		return nil, contract.Errorf(contract.CodeCodeInvalidLength, "code: required, 4 to 16 digits")
	}
	if old != nil && !bytes.Equal(old.CodeHash, a.CodeHash) {
		a.Uses = 0 // another code: its entries start afresh
	}
	if err := setLimit(a, d); err != nil {
		return nil, err
	}
	if err := setSchedule(a, d.Schedule); err != nil {
		return nil, err
	}
	if o, ok := env.codeOwner(a.CodeHash); ok && !(o.Kind == store.OwnerAccessCode && o.ID == a.ID) {
		return nil, contract.Errorf(contract.CodeCodeTaken, "the code is taken")
	}
	a.Status = initialStatus(a, now)
	return a, nil
}

// setLimit applies max_uses and is_one_time_use to a. is_one_time_use true
// is max_uses 1; false takes a limit of 1 away (unless max_uses sets one).
// A limit the code has already reached is refused: the code would be used
// up by the upsert that sets it.
func setLimit(a *store.AccessCode, d accessCodeData) error {
	bad := func(format string, args ...any) error {
		return contract.Errorf(contract.CodeAccessCodeInvalid, format, args...)
	}
	if d.MaxUses != nil {
		if *d.MaxUses < 1 {
			return bad("max_uses: %d, must be 1 or more", *d.MaxUses)
		}
		a.MaxUses = *d.MaxUses
	}
	if d.IsOneTimeUse != nil {
		switch {
		case *d.IsOneTimeUse && d.MaxUses != nil && *d.MaxUses != 1:
			return bad("is_one_time_use: true, yet max_uses is %d", *d.MaxUses)
		case !*d.IsOneTimeUse && d.MaxUses != nil && *d.MaxUses == 1:
			return bad("is_one_time_use: false, yet max_uses is 1")
		case *d.IsOneTimeUse:
			a.MaxUses = 1
		case d.MaxUses == nil && a.MaxUses == 1:
			a.MaxUses = 0
		}
	}
	if a.MaxUses > 0 && a.Uses >= a.MaxUses {
		return bad("max_uses: %d, yet the code has opened %d times already", a.MaxUses, a.Uses)
	}
	return nil
}

// setSchedule applies a schedule given in a command: absent keeps a's,
// null removes it, anything else must be a valid weekly schedule, kept in
// its canonical form.
func setSchedule(a *store.AccessCode, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return nil
	case string(raw) == "null":
		a.Schedule = nil
		return nil
	}
	s, err := weekly.Parse(raw)
	if err != nil {
		var fe *weekly.FieldError
		if errors.As(err, &fe) {
			return contract.Errorf(contract.CodeAccessCodeInvalid, "%s", fe.Detail())
		}
		return contract.Errorf(contract.CodeAccessCodeInvalid, "schedule: %v", err)
	}
	canon, err := json.Marshal(s)
	if err != nil {
		return err
	}
	a.Schedule = canon
	return nil
}

// activeSchedule reports whether a's schedule (if it has one) lets it open
// at now.
func activeSchedule(a *store.AccessCode, now time.Time) (bool, error) {
	if len(a.Schedule) == 0 {
		return true, nil
	}
	s, err := weekly.Parse(a.Schedule)
	if err != nil {
		return false, err // a stored schedule is canonical: this is a broken record
	}
	return s.Active(now), nil
}

func (b *Box) cmdAccessCodeUpsert(c *txc, data []byte) (any, error) {
	var d accessCodeData
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	var old *store.AccessCode
	if d.AccessCodeID != nil && *d.AccessCodeID != "" {
		var err error
		if old, err = c.tx.AccessCode(*d.AccessCodeID); err != nil {
			return nil, err
		}
	}
	a, err := b.buildAccessCode(d, old, txACEnv{c}, c.now)
	if err != nil {
		return nil, err
	}
	if old == nil && c.tx.AccessCodeCount() >= b.cfg.MaxAccessCodes {
		// The box is full: the code is not stored, and says so.
		a.Status = contract.StatusUnset
		a.Errors = []store.Notice{notice(contract.CodeFailedToSetOnDevice, c.now)}
		if err := statusEvent(c, a); err != nil {
			return nil, err
		}
		return ViewAccessCode(a), nil
	}
	if err := c.tx.PutAccessCode(a); err != nil {
		return nil, err
	}
	if err := statusEvent(c, a); err != nil {
		return nil, err
	}
	c.onCommit(func() { b.armSchedule(0) })
	return ViewAccessCode(a), nil
}

func (b *Box) cmdAccessCodeDelete(c *txc, data []byte) (any, error) {
	var d struct {
		AccessCodeID *string `json:"access_code_id"`
	}
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	if d.AccessCodeID == nil || *d.AccessCodeID == "" {
		return nil, contract.Errorf(contract.CodeAccessCodeInvalid, "access_code_id: required")
	}
	a, err := c.tx.AccessCode(*d.AccessCodeID)
	if err != nil {
		return nil, err
	}
	if a == nil {
		// A code the schedule removed is gone for good once the cloud
		// deletes it too: it is not restored after a clock jump.
		ts, err := c.tx.Tombstone(*d.AccessCodeID)
		if err != nil {
			return nil, err
		}
		if ts == nil {
			return nil, contract.Errorf(contract.CodeAccessCodeNotFound, "no access code %q", *d.AccessCodeID)
		}
		if err := c.tx.DeleteTombstone(ts.Code.ID); err != nil {
			return nil, err
		}
		ts.Code.Status = contract.StatusRemoved
		return ViewAccessCode(&ts.Code), nil
	}
	if err := removeCode(c, a); err != nil {
		return nil, err
	}
	return ViewAccessCode(a), nil
}
