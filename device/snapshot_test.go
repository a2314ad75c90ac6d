package device

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"smartboxd/contract"
	"smartboxd/store"
)

// snapCodes is a snapshot of one key and n drop-off codes for it.
func snapCodes(n int) map[string]any {
	codes := make([]any, n)
	for i := range codes {
		codes[i] = map[string]any{"access_code_id": fmt.Sprintf("ac%d", i), "code": fmt.Sprintf("%08d", 10000000+i), "name": "n",
			"type": "ongoing", "key_id": "k", "action": "dropoff"}
	}
	return map[string]any{"version": "s1", "keys": []any{map[string]any{"key_id": "k", "name": "K"}}, "access_codes": codes}
}

// A snapshot larger than a chunk is staged over several transactions and
// applied whole; one refused in a late chunk changes nothing, and leaves no
// stage or running mark behind.
func TestSnapshotInChunks(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SnapshotChunk = 3 })
	h.mustOK("key.upsert", map[string]any{"key_id": "old", "name": "old"})

	bad := snapCodes(20)
	bad["access_codes"].([]any)[17].(map[string]any)["code"] = "10000002" // ac2's code
	before := h.count()
	r := h.exec("sync.snapshot", bad)
	if r.OK || r.Error.Code != contract.CodeCodeTaken || !strings.Contains(r.Error.Message, "access_codes[17]") {
		t.Fatalf("reply %+v", r)
	}
	eq(t, "events", h.count(), before)
	eq(t, "old key kept", h.key("old") != nil, true)
	h.noStage()

	res := h.mustOK("sync.snapshot", snapCodes(20))
	eq(t, "codes", res["access_codes"].(float64), 20.0)
	eq(t, "keys", res["keys"].(float64), 1.0)
	eq(t, "old key gone", h.key("old") == nil, true)
	h.noStage()
	h.enter("10000019")
	eq(t, "last code opens", h.last("bin.unlocked")["reason"].(string), "dropoff")
	st := h.state()
	eq(t, "state codes", st.AccessCodes, 20)
	eq(t, "state keys", st.Keys, 1)
}

func (h *harness) noStage() {
	h.t.Helper()
	if err := h.db.View(func(tx *store.Tx) error {
		if tx.Staging() || tx.Running() != "" {
			return fmt.Errorf("stage %v, running %q", tx.Staging(), tx.Running())
		}
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// Every limit holds while the snapshot is read: too many keys, too many
// codes, and key.upsert past max_keys.
func TestSnapshotLimits(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxKeys, c.MaxAccessCodes, c.SnapshotChunk = 2, 5, 2 })
	keys := []any{map[string]any{"key_id": "a", "name": "a"}, map[string]any{"key_id": "b", "name": "b"}, map[string]any{"key_id": "c", "name": "c"}}
	r := h.exec("sync.snapshot", map[string]any{"keys": keys})
	if r.OK || r.Error.Code != contract.CodeKeyLimit {
		t.Fatalf("3 keys: %+v", r)
	}
	r = h.exec("sync.snapshot", snapCodes(6))
	if r.OK || r.Error.Code != contract.CodeAccessCodeLimit {
		t.Fatalf("6 codes: %+v", r)
	}
	h.noStage()
	h.mustOK("sync.snapshot", snapCodes(5))

	h.mustOK("key.upsert", map[string]any{"key_id": "x", "name": "x"})
	r = h.exec("key.upsert", map[string]any{"key_id": "y", "name": "y"})
	if r.OK || r.Error.Code != contract.CodeKeyLimit {
		t.Fatalf("third key: %+v", r)
	}
	h.mustOK("key.upsert", map[string]any{"key_id": "x", "name": "x2"}) // an update is no new key

	// A flood of empty records is refused at the first, not decoded whole.
	flood := []byte(`{"access_codes":[` + strings.Repeat(`{},`, 100000) + `{}]}`)
	rr, err := h.box.Execute(context.Background(), contract.Command{ID: "flood", Type: contract.TypeSnapshot, Data: flood})
	if err != nil || rr.OK || rr.Error.Code != contract.CodeAccessCodeInvalid || !strings.Contains(rr.Error.Message, "access_codes[0]") {
		t.Fatalf("flood: %+v %v", rr, err)
	}
	// A record of the wrong shape is cmd.invalid, naming it.
	rr, err = h.box.Execute(context.Background(), contract.Command{ID: "shape", Type: contract.TypeSnapshot, Data: []byte(`{"keys":[{"key_id":"a","name":"a"},{"key_id":7}]}`)})
	if err != nil || rr.OK || rr.Error.Code != contract.CodeCmdInvalid || !strings.Contains(rr.Error.Message, "keys[1]") {
		t.Fatalf("shape: %+v %v", rr, err)
	}
}

// A snapshot cut short by a crash is answered internal when the broker
// delivers it again, that answer is kept, and it is not run again.
func TestSnapshotCutShort(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SnapshotChunk = 2 })
	h.mustOK("key.upsert", map[string]any{"key_id": "old", "name": "old"})
	h.stop()
	// What a crash between two chunks leaves: the mark and a partial stage.
	db, err := store.Open(h.dir, store.Options{BoxID: "box-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error {
		if err := tx.BeginStage(); err != nil {
			return err
		}
		if err := tx.StageKey(&store.Key{ID: "half", Name: "half"}); err != nil {
			return err
		}
		return tx.SetRunning("snap-9")
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	h.start()

	for range 2 {
		r := h.execID("snap-9", "sync.snapshot", snapCodes(5))
		if r.OK || r.Error.Code != contract.CodeInternal {
			t.Fatalf("redelivered: %+v", r)
		}
	}
	eq(t, "not run", h.key("k") == nil, true)
	eq(t, "old kept", h.key("old") != nil, true)
	eq(t, "half not applied", h.key("half") == nil, true)
	h.noStage()
	// Another id runs.
	h.mustOK("sync.snapshot", snapCodes(5))
	eq(t, "applied", h.key("k") != nil, true)
}

// TestSnapshotMemory applies a 64 MiB snapshot in a child process and holds
// its peak RSS (VmHWM) to three times the payload plus 32 MiB. The child is
// this test binary; under the race detector, whose shadow memory would
// swamp the figure, the test is skipped.
func TestSnapshotMemory(t *testing.T) {
	const payload = 64 << 20
	mode := os.Getenv("SMARTBOX_SNAPSHOT_MEMORY")
	if mode != "" {
		snapshotMemoryChild(t, mode, payload)
		return
	}
	if raceEnabled {
		t.Skip("the race detector's memory would swamp the figure")
	}
	if testing.Short() {
		t.Skip("a 64 MiB snapshot takes a while")
	}
	for _, mode := range []string{"codes", "empty"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSnapshotMemory$", "-test.v")
			cmd.Env = append(os.Environ(), "SMARTBOX_SNAPSHOT_MEMORY="+mode)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			var hwm, size int
			var reply string
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) >= 4 && f[0] == "snapshot-memory:" {
					size, _ = strconv.Atoi(f[1])
					hwm, _ = strconv.Atoi(f[2])
					reply = f[3]
				}
			}
			if size < payload-1024 || hwm == 0 {
				t.Fatalf("no figure from the child:\n%s", out)
			}
			limit := 3*size + 32<<20
			t.Logf("%s: payload %d MiB, peak RSS %d MiB (limit %d MiB), reply %s", mode, size>>20, hwm>>20, limit>>20, reply)
			if want := map[string]string{"codes": "ok", "empty": contract.CodeAccessCodeInvalid}[mode]; reply != want {
				t.Errorf("reply %s, want %s", reply, want)
			}
			if hwm > limit {
				t.Errorf("peak RSS %d MiB > %d MiB", hwm>>20, limit>>20)
			}
		})
	}
}

// snapshotMemoryChild builds a payload of size bytes, parses it as the MQTT
// link does and applies it, then prints its size, VmHWM and the reply.
func snapshotMemoryChild(t *testing.T, mode string, size int) {
	h := newHarness(t)
	buf := bytes.NewBuffer(make([]byte, 0, size+1024))
	buf.WriteString(`{"id":"mem","type":"sync.snapshot","data":{"version":"m","keys":[{"key_id":"k","name":"K"}],"access_codes":[`)
	pad := strings.Repeat("x", 180)
	for i := 0; buf.Len() < size-400; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		if mode == "empty" {
			buf.WriteString("{}")
			continue
		}
		fmt.Fprintf(buf, `{"access_code_id":"ac-%07d","code":"%08d","name":"guest %d %s","type":"time_bound","starts_at":"2026-01-01T00:00:00Z","ends_at":"2036-12-31T00:00:00Z","key_id":"k","action":"dropoff"}`, i, 10000000+i, i, pad)
	}
	buf.WriteString(`]}}`)
	raw := buf.Bytes()
	cmd, err := contract.ParseCommand(raw, contract.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.box.Execute(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	result := "ok"
	if !r.OK {
		result = r.Error.Code
		t.Logf("reply %+v", r.Error)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	hwm := 0
	for line := range strings.SplitSeq(string(status), "\n") {
		if strings.HasPrefix(line, "Rss") || strings.HasPrefix(line, "VmHWM") {
			t.Log(line)
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			hwm = kb << 10
		}
	}
	fmt.Printf("snapshot-memory: %d %d %s\n", len(raw), hwm, result)
}

// The state document says the box's mode and how its database was
// recovered; a snapshot that commits tells the daemon (which backs up).
func TestStateModeAndSnapshotHook(t *testing.T) {
	h := newHarness(t)
	st := h.state()
	eq(t, "default mode", st.Mode, contract.ModeNormal)
	eq(t, "not restored", st.Store.Restored, "")

	applied := 0
	h2 := newHarness(t, func(c *Config) {
		c.Mode, c.StoreRestored = contract.ModeSafe, contract.StoreRestoredEmpty
		c.SnapshotApplied = func() { applied++ }
	})
	st = h2.state()
	eq(t, "safe mode", st.Mode, contract.ModeSafe)
	eq(t, "restored", st.Store.Restored, contract.StoreRestoredEmpty)
	h2.exec("sync.snapshot", map[string]any{"keys": []any{map[string]any{"key_id": 1}}}) // refused
	h2.flush()
	eq(t, "hook after a refused snapshot", applied, 0)
	h2.mustOK("sync.snapshot", snapCodes(3))
	h2.flush()
	eq(t, "hook after a snapshot", applied, 1)
}
