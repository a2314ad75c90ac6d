package device

import (
	"time"
	"unicode/utf8"

	"smartboxd/store"
)

// validateCode checks a keypad entry or a code given in a command: 4 to 16
// digits.
func validateCode(s string) error {
	for _, r := range s {
		if r < '0' || r > '9' {
			return errf(CodeCodeNotNumeric, "codes are digits only")
		}
	}
	if n := utf8.RuneCountInString(s); n < 4 || n > 16 {
		return errf(CodeCodeInvalidLength, "codes are 4 to 16 digits, not %d", n)
	}
	return nil
}

// NoticeView is an access code's error or warning as published.
type NoticeView struct {
	ErrorCode   string    `json:"error_code,omitempty"`
	WarningCode string    `json:"warning_code,omitempty"`
	Message     string    `json:"message"`
	CreatedAt   time.Time `json:"created_at"`
}

// AccessCodeView is the access code object of the access-code model, as
// replies and access_code.status events carry it: never the code.
type AccessCodeView struct {
	AccessCodeID string       `json:"access_code_id"`
	Name         string       `json:"name"`
	Type         string       `json:"type"`
	Status       string       `json:"status"`
	StartsAt     *time.Time   `json:"starts_at"`
	EndsAt       *time.Time   `json:"ends_at"`
	CreatedAt    time.Time    `json:"created_at"`
	KeyID        string       `json:"key_id"`
	Action       string       `json:"action"`
	Errors       []NoticeView `json:"errors"`
	Warnings     []NoticeView `json:"warnings"`
}

// ViewAccessCode is a's public object.
func ViewAccessCode(a *store.AccessCode) AccessCodeView {
	v := AccessCodeView{AccessCodeID: a.ID, Name: a.Name, Type: a.Type, Status: a.Status,
		StartsAt: a.StartsAt, EndsAt: a.EndsAt, CreatedAt: a.CreatedAt, KeyID: a.KeyID, Action: a.Action,
		Errors: []NoticeView{}, Warnings: []NoticeView{}}
	for _, n := range a.Errors {
		v.Errors = append(v.Errors, NoticeView{ErrorCode: n.Code, Message: n.Message, CreatedAt: n.CreatedAt})
	}
	for _, n := range a.Warnings {
		v.Warnings = append(v.Warnings, NoticeView{WarningCode: n.Code, Message: n.Message, CreatedAt: n.CreatedAt})
	}
	return v
}

var noticeText = map[string]string{
	CodeFailedToSetOnDevice: "the box could not store the code",
	CodeDelayInSetting:      "the code was set later than its start",
	CodeDelayInRemoving:     "the code was removed later than its end",
}

func notice(code string, now time.Time) store.Notice {
	return store.Notice{Code: code, Message: noticeText[code], CreatedAt: now.UTC().Truncate(time.Second)}
}

// statusEvent appends an access_code.status event with a's object.
func statusEvent(c *txc, a *store.AccessCode) error {
	return c.event("access_code.status", ViewAccessCode(a))
}

// initialStatus is a new or changed code's status at now: ongoing codes are
// set at once; time-bound ones are unset before their window and set in it.
func initialStatus(a *store.AccessCode, now time.Time) string {
	if a.Type == store.TypeTimeBound && now.Before(*a.StartsAt) {
		return store.StatusUnset
	}
	return store.StatusSet
}

// removeCode takes a through removing to removed and deletes it.
func removeCode(c *txc, a *store.AccessCode) error {
	a.Status = store.StatusRemoving
	if err := statusEvent(c, a); err != nil {
		return err
	}
	if err := c.tx.DeleteAccessCode(a.ID); err != nil {
		return err
	}
	a.Status = store.StatusRemoved
	return statusEvent(c, a)
}

// transition moves a time-bound code along its lifecycle as far as now
// allows: unset -> setting -> set at starts_at, set -> removing -> removed at
// ends_at, each step an access_code.status event. A step later than
// LateAfter carries the delay warning of the model.
func (b *Box) transition(c *txc, a *store.AccessCode) error {
	now := c.now
	if a.Type != store.TypeTimeBound || a.StartsAt == nil || a.EndsAt == nil {
		return nil
	}
	if a.Status == store.StatusUnset || a.Status == store.StatusSetting {
		if now.Before(*a.StartsAt) {
			return nil
		}
		if !now.Before(*a.EndsAt) {
			// The box missed the whole window (it was off).
			a.Warnings = append(a.Warnings, notice(CodeDelayInRemoving, now))
			return removeCode(c, a)
		}
		if now.Sub(*a.StartsAt) > b.cfg.LateAfter {
			a.Warnings = append(a.Warnings, notice(CodeDelayInSetting, now))
		}
		a.Status = store.StatusSetting
		if err := statusEvent(c, a); err != nil {
			return err
		}
		a.Status = store.StatusSet
		if err := c.tx.PutAccessCode(a); err != nil {
			return err
		}
		return statusEvent(c, a)
	}
	if now.Before(*a.EndsAt) {
		return nil
	}
	if now.Sub(*a.EndsAt) > b.cfg.LateAfter {
		a.Warnings = append(a.Warnings, notice(CodeDelayInRemoving, now))
	}
	return removeCode(c, a)
}

// scheduleBatch bounds the transitions committed in one transaction.
const scheduleBatch = 500

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
		b.armSchedule(time.Minute)
		return
	}
	var due []store.ScheduleEntry
	var next time.Time
	err := b.txn(func(c *txc) error {
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
			if err := b.transition(c, a); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err != nil:
		b.armSchedule(5 * time.Second)
	case len(due) == scheduleBatch:
		b.armSchedule(0)
	case next.IsZero():
		b.armSchedule(time.Minute)
	default:
		b.armSchedule(min(max(next.Sub(b.clock.Now()), 0), time.Minute))
	}
}
