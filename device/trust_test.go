package device

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/trust"
)

// signer signs commands for one key, raising its counter.
type signer struct {
	name    string
	priv    ed25519.PrivateKey
	counter uint64
}

func newSigner(t testing.TB, name string) *signer {
	t.Helper()
	_, priv, err := trust.Keygen()
	if err != nil {
		t.Fatal(err)
	}
	return &signer{name: name, priv: priv}
}

func (s *signer) key(roles ...trust.Role) TrustKey {
	return TrustKey{Name: s.name, Public: s.priv.Public().(ed25519.PublicKey), Roles: roles}
}

// sign makes the JWS of a command for box with the next counter (or the
// given one).
func (s *signer) sign(t testing.TB, box, id, typ string, data any, counter ...uint64) []byte {
	t.Helper()
	n := s.counter + 1
	if len(counter) > 0 {
		n = counter[0]
	}
	s.counter = max(s.counter, n)
	payload, err := json.Marshal(map[string]any{"id": id, "type": typ, "data": data, "box_id": box, "counter": n})
	if err != nil {
		t.Fatal(err)
	}
	return []byte(trust.Sign(s.priv, s.name, payload))
}

// trustHarness is a box that obeys admin and an open-only key.
func trustHarness(t *testing.T, seal bool) (*harness, *signer, *signer) {
	t.Helper()
	admin, opener := newSigner(t, "cloud"), newSigner(t, "ops-7")
	id, err := trust.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "identity"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) {
		c.Trust = Trust{Keys: []TrustKey{admin.key(trust.RoleAdmin), opener.key(trust.RoleOpen)}, SealCodes: seal, Identity: id}
	})
	return h, admin, opener
}

func (h *harness) receive(payload []byte) contract.Reply {
	h.t.Helper()
	r, err := h.box.Receive(h.t.Context(), payload)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func wantCode(t *testing.T, what string, r contract.Reply, code string) {
	t.Helper()
	if r.OK || r.Error == nil || r.Error.Code != code {
		t.Fatalf("%s: reply %+v, want %s", what, r, code)
	}
}

// TestSignedCommandsRefused: every payload the box must not obey is
// answered with its code, carries the id where it can be read, changes
// nothing, and does not poison the id for the real command.
func TestSignedCommandsRefused(t *testing.T) {
	h, admin, opener := trustHarness(t, false)
	stranger := newSigner(t, "cloud") // the right name, another key
	before := h.count()
	bin := map[string]any{"bin": 1}
	for _, tc := range []struct {
		name, id, code string
		payload        []byte
	}{
		{"unsigned JSON", "c1", contract.CodeCmdUnauthenticated, []byte(`{"id":"c1","type":"bin.open","data":{"bin":1}}`)},
		{"garbage", "", contract.CodeCmdUnauthenticated, []byte("not a command")},
		{"forged signature", "c2", contract.CodeCmdUnauthenticated, stranger.sign(t, "box-test", "c2", "bin.open", bin)},
		{"unknown kid", "c3", contract.CodeCmdUnauthenticated, newSigner(t, "nobody").sign(t, "box-test", "c3", "bin.open", bin)},
		{"another box", "c4", contract.CodeCmdWrongBox, admin.sign(t, "box-other", "c4", "bin.open", bin)},
		{"open key provisions", "c5", contract.CodeCmdForbidden, opener.sign(t, "box-test", "c5", "access_code.upsert",
			map[string]any{"access_code_id": "a", "code": "1234", "name": "x", "type": "ongoing", "key_id": "k", "action": "dropoff"})},
		{"open key snapshots", "c6", contract.CodeCmdForbidden, opener.sign(t, "box-test", "c6", "sync.snapshot", map[string]any{"keys": []any{}, "access_codes": []any{}})},
	} {
		r := h.receive(tc.payload)
		wantCode(t, tc.name, r, tc.code)
		if r.ID != tc.id {
			t.Errorf("%s: reply id %q, want %q", tc.name, r.ID, tc.id)
		}
	}
	// A tampered payload: the signature no longer matches.
	tok := string(admin.sign(t, "box-test", "c7", "state.get", nil))
	parts := strings.Split(tok, ".")
	parts[1] = parts[1][:len(parts[1])-2] + "AA"
	wantCode(t, "tampered", h.receive([]byte(strings.Join(parts, "."))), contract.CodeCmdUnauthenticated)

	if p := h.locks.pulses(); len(p) != 0 {
		t.Fatalf("refused commands opened %v", p)
	}
	if n := h.count(); n != before {
		t.Fatalf("refused commands appended %d events", n-before)
	}
	// The ids the refusals carried are not spent: the real commands run.
	if r := h.receive(admin.sign(t, "box-test", "c1", "bin.open", bin)); !r.OK {
		t.Fatalf("the cloud's own c1 after a forged c1: %+v", r)
	}
	if r := h.receive(opener.sign(t, "box-test", "c4", "bin.open", map[string]any{"bin": 2})); !r.OK {
		t.Fatalf("open key opening a bin: %+v", r)
	}
	if got := h.locks.pulses(); len(got) != 2 {
		t.Fatalf("pulses %v, want bins 1 and 2", got)
	}
}

// TestReplayWindow: a counter is taken once; out-of-order delivery inside
// the window is accepted; a counter 1,024 below the highest is refused;
// counters survive a restart and the idempotency table's turnover.
func TestReplayWindow(t *testing.T) {
	h, admin, _ := trustHarness(t, false)
	get := func(id string, counter uint64) contract.Reply {
		return h.receive(admin.sign(t, "box-test", id, "state.get", nil, counter))
	}
	if r := get("r10", 10); !r.OK {
		t.Fatalf("first command: %+v", r)
	}
	// The same id again is a retransmission: its stored reply, harmless.
	if r := get("r10", 10); !r.OK {
		t.Fatalf("retransmission: %+v", r)
	}
	// The same counter under a new id is a replay.
	wantCode(t, "counter reused", get("r10b", 10), contract.CodeCmdReplayed)
	// Out of order inside the window.
	for _, n := range []uint64{5, 7, 6} {
		if r := get(fmt.Sprintf("r%d", n), n); !r.OK {
			t.Fatalf("counter %d inside the window: %+v", n, r)
		}
	}
	wantCode(t, "counter 7 again", get("r7b", 7), contract.CodeCmdReplayed)
	if r := get("r2000", 2000); !r.OK {
		t.Fatalf("a jump ahead: %+v", r)
	}
	wantCode(t, "1,024 below the highest", get("r976", 2000-1024), contract.CodeCmdReplayed)
	if r := get("r977", 2000-1023); !r.OK {
		t.Fatalf("1,023 below the highest: %+v", r)
	}
	h.restart()
	wantCode(t, "after a restart", get("r2000b", 2000), contract.CodeCmdReplayed)
	// A refused command (a rule, not trust) still spends its counter.
	if r := h.receive(admin.sign(t, "box-test", "k1", "key.retire", map[string]any{"key_id": "none"}, 2001)); r.OK {
		t.Fatalf("retiring no key: %+v", r)
	}
	wantCode(t, "counter of a refused command", get("k1b", 2001), contract.CodeCmdReplayed)
}

// TestReplayAfterReplyTurnover replays a command whose id has left the
// idempotency table: the counter still refuses it.
func TestReplayAfterReplyTurnover(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 commands")
	}
	h, admin, _ := trustHarness(t, false)
	h.noSync = true // 20,000 commits: durability is not what is tested
	h.replies = 1000
	h.restart()
	first := admin.sign(t, "box-test", "bin-1", "bin.open", map[string]any{"bin": 1})
	if r := h.receive(first); !r.OK {
		t.Fatalf("first: %+v", r)
	}
	// Replies younger than a day are kept whatever their number: let the
	// first grow old, so the commands after it turn it over.
	h.advance(25 * time.Hour)
	for i := range 20_000 {
		if r := h.receive(admin.sign(t, "box-test", fmt.Sprintf("s%d", i), "state.get", nil)); !r.OK {
			t.Fatalf("command %d: %+v", i, r)
		}
	}
	wantCode(t, "replay after 20,000 commands", h.receive(first), contract.CodeCmdReplayed)
	if p := h.locks.pulses(); len(p) != 1 {
		t.Fatalf("pulses %v: the replay opened a bin", p)
	}
}

// TestSignedAcks: with trust on only a JWS of an admin or ack key for this
// box is an ack; anything else is refused and counted.
func TestSignedAcks(t *testing.T) {
	h, admin, opener := trustHarness(t, false)
	ack := func(s *signer, box string, seq uint64) []byte {
		p, _ := json.Marshal(map[string]any{"box_id": box, "seq": seq})
		return []byte(trust.Sign(s.priv, s.name, p))
	}
	if seq, err := h.box.ReadAck(ack(admin, "box-test", 7)); err != nil || seq != 7 {
		t.Fatalf("admin ack: %d, %v", seq, err)
	}
	for name, p := range map[string][]byte{
		"plain":       []byte(`{"seq":999999999}`),
		"open key":    ack(opener, "box-test", 9),
		"another box": ack(admin, "box-x", 9),
		"forged":      ack(newSigner(t, "cloud"), "box-test", 9),
	} {
		if _, err := h.box.ReadAck(p); err == nil {
			t.Errorf("%s ack taken", name)
		}
	}
	if got := h.state().AcksRefused; got != 4 {
		t.Fatalf("acks_refused %d, want 4", got)
	}
}

// TestSealedCodes: codes sealed to the box's identity work like plain
// ones; with seal_codes a plain code is refused and no key code is made.
func TestSealedCodes(t *testing.T) {
	h, admin, _ := trustHarness(t, true)
	pub := h.box.cfg.Trust.Identity.PublicKey()
	seal := func(code string) string {
		s, err := trust.Seal(pub, []byte(code))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ok := func(id, typ string, data any) map[string]any {
		t.Helper()
		r := h.receive(admin.sign(t, "box-test", id, typ, data))
		if !r.OK {
			t.Fatalf("%s: %+v", typ, r)
		}
		var m map[string]any
		json.Unmarshal(r.Result, &m)
		return m
	}
	ok("s1", "settings.set", map[string]any{"key_codes_enabled": true})
	ok("s2", "key.upsert", map[string]any{"key_id": "k", "name": "Front", "serial_number": "ABCD"})
	ac := map[string]any{"access_code_id": "a", "name": "guest", "type": "ongoing", "key_id": "k", "action": "dropoff"}
	ac["code"] = "4826"
	wantCode(t, "plain code", h.receive(admin.sign(t, "box-test", "s3", "access_code.upsert", ac)), contract.CodeCodePlaintext)
	delete(ac, "code")
	ac["code_sealed"] = "AAAA" + seal("4826")[4:]
	wantCode(t, "sealed code that does not open", h.receive(admin.sign(t, "box-test", "s4", "access_code.upsert", ac)), contract.CodeCodeSealedInvalid)
	ac["code_sealed"] = seal("4826")
	ok("s5", "access_code.upsert", ac)
	wantCode(t, "virtual key without a sealed code", h.receive(admin.sign(t, "box-test", "s6", "key.upsert",
		map[string]any{"key_id": "v", "name": "Virtual", "virtual": true})), contract.CodeKeyCodeRequired)
	v := ok("s7", "key.upsert", map[string]any{"key_id": "v", "name": "Virtual", "virtual": true, "key_code_sealed": seal("97531")})
	if _, has := v["key_code"]; has {
		t.Fatalf("reply echoes a key code: %v", v)
	}
	h.enter("4826")
	if p := h.locks.pulses(); len(p) != 1 {
		t.Fatalf("the sealed drop-off code opened %v", p)
	}
	// The offline key and a revoked offline code go sealed too.
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	wantCode(t, "plain offline key", h.receive(admin.sign(t, "box-test", "o1", "offline.set_key", map[string]any{"key": key})), contract.CodeCodePlaintext)
	if r := ok("o2", "offline.set_key", map[string]any{"key_sealed": seal(key)}); r["key_set"] != true {
		t.Fatalf("sealed offline key: %v", r)
	}
	wantCode(t, "plain revoke", h.receive(admin.sign(t, "box-test", "o3", "offline.revoke", map[string]any{"code": "11000095031223"})), contract.CodeCodePlaintext)
	ok("o4", "offline.revoke", map[string]any{"code_sealed": seal("11000095031223")})
}

// TestSignedSnapshot: a signed sync.snapshot runs through Receive like any
// command: its counter is spent with its effect, a replay is refused, a
// retransmission gets its reply, and the same id with other data is
// cmd.conflict.
func TestSignedSnapshot(t *testing.T) {
	h, admin, _ := trustHarness(t, false)
	data := map[string]any{"version": "v1", "keys": []any{map[string]any{"key_id": "k", "name": "Front"}}, "access_codes": []any{}}
	tok := admin.sign(t, "box-test", "snap-1", "sync.snapshot", data)
	if r := h.receive(tok); !r.OK {
		t.Fatalf("signed snapshot: %+v", r)
	}
	if r := h.receive(tok); !r.OK {
		t.Fatalf("retransmission: %+v", r)
	}
	wantCode(t, "replayed under a new id", h.receive(admin.sign(t, "box-test", "snap-2", "sync.snapshot", data, admin.counter)), contract.CodeCmdReplayed)
	data["version"] = "v2"
	wantCode(t, "the id with other data", h.receive(admin.sign(t, "box-test", "snap-1", "sync.snapshot", data)), contract.CodeCmdConflict)
	if st := h.state(); st.Keys != 1 {
		t.Fatalf("keys %d after the snapshot", st.Keys)
	}
}

// TestLargeSignedSnapshot: a signed snapshot larger than any other command
// is taken when the box's limits are left at their defaults.
func TestLargeSignedSnapshot(t *testing.T) {
	h, admin, _ := trustHarness(t, false)
	codes := make([]any, 500)
	for i := range codes {
		codes[i] = map[string]any{"access_code_id": fmt.Sprintf("ac-%04d", i), "code": fmt.Sprintf("%08d", 10_000_000+i*7),
			"name": "guest", "type": "ongoing", "key_id": "k", "action": "dropoff"}
	}
	tok := admin.sign(t, "box-test", "snap-big", "sync.snapshot", map[string]any{"version": "v1",
		"keys": []any{map[string]any{"key_id": "k", "name": "Front"}}, "access_codes": codes})
	if len(tok) < 64<<10 {
		t.Fatalf("the signed snapshot is only %d bytes", len(tok))
	}
	if r := h.receive(tok); !r.OK {
		t.Fatalf("a %d-byte signed snapshot: %+v", len(tok), r)
	}
	if st := h.state(); st.AccessCodes != len(codes) {
		t.Fatalf("access codes %d, want %d", st.AccessCodes, len(codes))
	}
}
