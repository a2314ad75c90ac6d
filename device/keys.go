package device

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"smartboxd/contract"
	"smartboxd/store"
)

// keyData is key.upsert's data; absent fields keep their value on update.
type keyData struct {
	KeyID         *string `json:"key_id"`
	Name          *string `json:"name"`
	Description   *string `json:"description"`
	SerialNumber  *string `json:"serial_number"`
	Notes         *string `json:"notes"`
	PickupNote    *string `json:"pickup_note"`
	Virtual       *bool   `json:"virtual"`
	KeyCode       *string `json:"key_code"`
	KeyCodeSealed *string `json:"key_code_sealed"`
	AnyLocation   *bool   `json:"any_location"`
}

// ViewKey is k's public form.
func ViewKey(k *store.Key) contract.KeyView {
	v := contract.KeyView{KeyID: k.ID, Name: k.Name, Description: k.Description, SerialNumber: strOrNil(k.Fob),
		Notes: k.Notes, PickupNote: k.PickupNote, Virtual: k.Virtual, AnyLocation: k.AnyLocation, HasKeyCode: len(k.CodeHash) > 0}
	if k.Bin != 0 {
		bin := k.Bin
		v.Bin = &bin
	}
	return v
}

// keyEnv is what key validation looks up: the store for one upsert, the
// snapshot's own records for a snapshot.
type keyEnv interface {
	fobOwner(serial string) string
	codeOwner(hash []byte) (store.CodeOwner, bool)
	fobInBin(serial string) bool
	keyCodesEnabled() bool
}

type txKeyEnv struct {
	b *Box
	c *txc
}

func (e txKeyEnv) fobOwner(s string) string { return e.c.tx.KeyByFob(s) }

func (e txKeyEnv) codeOwner(h []byte) (store.CodeOwner, bool) { return e.c.tx.CodeOwner(h) }

func (e txKeyEnv) fobInBin(s string) bool { return e.b.fobInBin(s) }

func (e txKeyEnv) keyCodesEnabled() bool { return e.b.settings.KeyCodesEnabled }

func (b *Box) fobInBin(serial string) bool {
	for _, x := range b.bins {
		if x.rec.Fob == serial || (x.seen.known && x.seen.fob == serial) {
			return true
		}
	}
	return false
}

// normalizeSerial upper-cases a fob serial and checks it is 4 to 20 hex digits.
func normalizeSerial(s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n := len(s); n < 4 || n > 20 {
		return "", contract.Errorf(contract.CodeKeySerialInvalid, "fob serials are 4 to 20 hex digits")
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F') {
			return "", contract.Errorf(contract.CodeKeySerialInvalid, "fob serials are hex digits")
		}
	}
	return s, nil
}

func maxChars(s *string, n int, code, field string) error {
	if s != nil && utf8.RuneCountInString(*s) > n {
		return contract.Errorf(code, "%s is longer than %d characters", field, n)
	}
	return nil
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// buildKey validates d against old (nil for a new key) and returns the
// record to write and, when the box made a key code, that code.
func (b *Box) buildKey(d keyData, old *store.Key, env keyEnv, now time.Time) (*store.Key, string, error) {
	code, err := b.openCode(d.KeyCode, d.KeyCodeSealed, "key_code")
	if err != nil {
		return nil, "", err
	}
	d.KeyCode, d.KeyCodeSealed = code, nil
	if d.KeyID == nil || strings.TrimSpace(*d.KeyID) == "" {
		return nil, "", contract.Errorf(contract.CodeKeyRequired, "key_id is required")
	}
	if len(*d.KeyID) > contract.MaxIDLen {
		return nil, "", contract.Errorf(contract.CodeKeyRequired, "key_id is longer than %d bytes", contract.MaxIDLen)
	}
	k := &store.Key{ID: *d.KeyID, CreatedAt: now.UTC().Truncate(time.Second)}
	if old != nil {
		cp := *old
		k = &cp
	}
	if (old == nil && d.Name == nil) || (d.Name != nil && strings.TrimSpace(*d.Name) == "") {
		return nil, "", contract.Errorf(contract.CodeKeyNameRequired, "name is required")
	}
	if err := errors.Join(
		maxChars(d.Description, 60, contract.CodeKeyDescriptionMax, "description"),
		maxChars(d.Notes, 100, contract.CodeKeyNotesMax, "notes"),
		maxChars(d.PickupNote, 240, contract.CodeKeyPickupNoteMax, "pickup_note")); err != nil {
		var e *contract.Error
		errors.As(err, &e)
		return nil, "", e
	}
	set(&k.Name, d.Name)
	set(&k.Description, d.Description)
	set(&k.Notes, d.Notes)
	set(&k.PickupNote, d.PickupNote)
	set(&k.AnyLocation, d.AnyLocation)
	wasVirtual := old != nil && old.Virtual
	set(&k.Virtual, d.Virtual)
	serialGiven := d.SerialNumber != nil && *d.SerialNumber != ""
	if k.Virtual {
		if serialGiven || k.Fob != "" {
			return nil, "", contract.Errorf(contract.CodeKeyFobVirtual, "a virtual key has no fob")
		}
		if !env.keyCodesEnabled() {
			return nil, "", contract.Errorf(contract.CodeCodeDisabled, "enable key codes to use virtual keys")
		}
	} else {
		if d.KeyCode != nil {
			return nil, "", contract.Errorf(contract.CodeKeyNotVirtual, "only a virtual key takes a key code")
		}
		if wasVirtual && k.Bin != 0 {
			return nil, "", contract.Errorf(contract.CodeKeyVirtualCheckedIn, "pick the key up before making it physical")
		}
		k.CodeHash = nil
	}
	if serialGiven {
		serial, err := normalizeSerial(*d.SerialNumber)
		if err != nil {
			return nil, "", err
		}
		if owner := env.fobOwner(serial); owner != "" && owner != k.ID {
			return nil, "", contract.Errorf(contract.CodeKeySerialTaken, "the fob belongs to another key")
		}
		if old != nil && old.Fob != serial && (old.Bin != 0 || env.fobInBin(serial)) {
			return nil, "", contract.Errorf(contract.CodeKeyAlreadyLinked, "the key or the new fob is checked in")
		}
		k.Fob = serial
	}
	generated := ""
	if k.Virtual {
		switch {
		case d.KeyCode != nil:
			if err := validateCode(*d.KeyCode); err != nil {
				return nil, "", err
			}
			h := b.st.CodeHash(*d.KeyCode)
			if o, ok := env.codeOwner(h); ok && !(o.Kind == store.OwnerKey && o.ID == k.ID) {
				return nil, "", contract.Errorf(contract.CodeCodeTaken, "the code is taken")
			}
			k.CodeHash = h
		case len(k.CodeHash) == 0 && b.cfg.Trust.SealCodes:
			// A code the box made would cross the broker in plain text.
			return nil, "", contract.Errorf(contract.CodeKeyCodeRequired, "a virtual key needs key_code_sealed while codes are sealed")
		case len(k.CodeHash) == 0:
			code, h, err := b.newKeyCode(env)
			if err != nil {
				return nil, "", err
			}
			generated, k.CodeHash = code, h
		}
	}
	k.UpdatedAt = now.UTC().Truncate(time.Second)
	return k, generated, nil
}

// newKeyCode makes a random 8-digit key code that nothing else uses.
func (b *Box) newKeyCode(env keyEnv) (string, []byte, error) {
	for range 100 {
		n, err := rand.Int(rand.Reader, big.NewInt(1e8))
		if err != nil {
			return "", nil, err
		}
		code := fmt.Sprintf("%08d", n.Int64())
		h := b.st.CodeHash(code)
		if _, taken := env.codeOwner(h); !taken {
			return code, h, nil
		}
	}
	return "", nil, contract.Errorf(contract.CodeCodeTaken, "no free key code")
}

func (b *Box) cmdKeyUpsert(c *txc, data []byte) (any, error) {
	var d keyData
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	var old *store.Key
	if d.KeyID != nil && *d.KeyID != "" {
		var err error
		if old, err = c.tx.Key(*d.KeyID); err != nil {
			return nil, err
		}
	}
	k, generated, err := b.buildKey(d, old, txKeyEnv{b, c}, c.now)
	if err != nil {
		return nil, err
	}
	if old == nil && c.tx.KeyCount() >= b.cfg.MaxKeys {
		return nil, contract.Errorf(contract.CodeKeyLimit, "the box holds at most %d keys", b.cfg.MaxKeys)
	}
	if err := c.tx.PutKey(k); err != nil {
		return nil, err
	}
	if err := c.event(contract.EventKeyUpdated, map[string]any{"key_id": k.ID, "created": old == nil}); err != nil {
		return nil, err
	}
	v := ViewKey(k)
	v.KeyCode = generated
	return v, nil
}

type keyIDData struct {
	KeyID *string `json:"key_id"`
}

func (b *Box) loadKey(c *txc, data []byte) (*store.Key, error) {
	var d keyIDData
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	if d.KeyID == nil || *d.KeyID == "" {
		return nil, contract.Errorf(contract.CodeKeyRequired, "key_id is required")
	}
	k, err := c.tx.Key(*d.KeyID)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, contract.Errorf(contract.CodeKeyNotFound, "no key %q", *d.KeyID)
	}
	return k, nil
}

func (b *Box) cmdKeyUnlink(c *txc, data []byte) (any, error) {
	k, err := b.loadKey(c, data)
	if err != nil {
		return nil, err
	}
	if k.Fob == "" {
		return nil, contract.Errorf(contract.CodeKeyAlreadyUnlinked, "the key has no fob")
	}
	if k.Bin != 0 || b.fobInBin(k.Fob) {
		return nil, contract.Errorf(contract.CodeKeyAlreadyLinked, "the key is checked in")
	}
	fob := k.Fob
	k.Fob = ""
	k.UpdatedAt = c.now.UTC().Truncate(time.Second)
	if err := c.tx.PutKey(k); err != nil {
		return nil, err
	}
	if err := c.event(contract.EventKeyUnlinked, map[string]string{"key_id": k.ID, "fob": fob}); err != nil {
		return nil, err
	}
	return ViewKey(k), nil
}

func (b *Box) cmdKeyRetire(c *txc, data []byte) (any, error) {
	k, err := b.loadKey(c, data)
	if err != nil {
		return nil, err
	}
	if k.Bin != 0 {
		return nil, contract.Errorf(contract.CodeKeyRetireDenied, "the key is in bin %d: pick it up first", k.Bin)
	}
	if err := c.tx.DeleteKey(k.ID); err != nil {
		return nil, err
	}
	if err := c.event(contract.EventKeyRetired, map[string]string{"key_id": k.ID}); err != nil {
		return nil, err
	}
	return map[string]any{"key_id": k.ID, "retired": true}, nil
}
