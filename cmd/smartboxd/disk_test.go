package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"smartboxd/internal/mqtttest"
)

// mount runs mount(8); a test that cannot mount is skipped, not failed:
// it needs root and a kernel that lets this process mount.
func mount(t *testing.T, args ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a file system for the data dir needs root")
	}
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount (%v): %s", err, out)
	}
	dir := args[len(args)-1]
	t.Cleanup(func() { unmount(t, dir) })
}

// unmount unmounts dir, lazily when something still holds it.
func unmount(t *testing.T, dir string) {
	for range 50 {
		if exec.Command("umount", dir).Run() == nil {
			return
		}
		if !isMountPoint(dir) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
		t.Errorf("umount -l %s: %v %s", dir, err, out)
	}
}

func isMountPoint(dir string) bool {
	raw, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// diskRig is a daemon whose data dir is a file system the test can ruin:
// two bins with readers, a keypad, a console, and a key checked in to bin
// 1 whose pickup code the test types.
type diskRig struct {
	t       *testing.T
	data    string
	cfg     string
	d       *daemon
	c       *cloud
	log     *eventLog
	state   *mqtttest.Recorder
	readers []*fakeReader
	keypad  *port
	cons    *consoleClient
	keys    int // keys the box holds
	codes   int // access codes the box holds
}

const (
	diskPIN  = "97531864"
	diskDrop = "20406080"
	diskPick = "13572468"
	diskFob  = "00F11ED0C5"
)

func newDiskRig(t *testing.T, data string) *diskRig {
	b := mqtttest.Start(t)
	r := &diskRig{t: t, data: data, readers: []*fakeReader{newFakeReader(t), newFakeReader(t)}, keypad: newPort(t)}
	con := newPort(t)
	dir := t.TempDir()
	r.cfg = writeConfig(t, dir, fmt.Sprintf(`box_id: box-disk
data_dir: %s
mqtt: {broker: %q, keepalive_s: 2}
console: {port: %s, technician_pin: %q}
hardware:
  backend: sim
  bins: [{id: 1}, {id: 2}]
readers:
  - {type: rdm6300, port: %s, bin: 1}
  - {type: rdm6300, port: %s, bin: 2}
keypad: {type: serial, port: %s}
timing: {fob_absent_ms: 300, dropoff_timeout_s: 5, inventory_settle_s: 1}
security: {lockout_after: 100, lockout_s: 1, lockout_max_s: 1}
clock: {require_sync: false}
`, data, b.URL(), con.Name(), diskPIN, r.readers[0].p.Name(), r.readers[1].p.Name(), r.keypad.Name()))
	r.c = newCloud(t, b, "box-disk")
	r.log = newEventLog(t, r.c.events)
	r.state = r.c.c.Subscribe(r.c.p + "/state")
	r.cons = newConsoleClient(t, con)
	r.start()

	r.c.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "k1", "serial_number": diskFob})
	r.c.mustOK("key.upsert", map[string]any{"key_id": "k2", "name": "k2"})
	r.c.mustOK("access_code.upsert", map[string]any{"access_code_id": "drop", "code": diskDrop, "name": "drop", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	r.c.mustOK("access_code.upsert", map[string]any{"access_code_id": "pick", "code": diskPick, "name": "pick", "type": "ongoing", "key_id": "k1", "action": "pickup"})
	r.keys, r.codes = 2, 2
	r.typeCode(diskDrop)
	r.next("bin.unlocked", 0)
	r.readers[0].put(diskFob)
	r.next("key.dropped_off", 0)
	if ans := r.cons.do("login " + diskPIN); !strings.Contains(ans, "\r\nOK\r\n") {
		t.Fatalf("console login: %q", ans)
	}
	r.ackAll()
	return r
}

func (r *diskRig) start() {
	r.t.Helper()
	n := len(r.log.all)
	r.d = startDaemon(r.t, r.cfg)
	waitFor(r.t, 30*time.Second, "device.started", func() bool {
		r.log.pump()
		for _, e := range r.log.all[n:] {
			if e.Type == "device.started" {
				return true
			}
		}
		return false
	})
}

func (r *diskRig) typeCode(code string) { r.keypad.Master.Write([]byte(code + "#")) }

// next waits for an event of typ with a seq above after.
func (r *diskRig) next(typ string, after uint64) event {
	r.t.Helper()
	var found event
	waitFor(r.t, 20*time.Second, "a "+typ+" event", func() bool {
		r.log.pump()
		for _, e := range r.log.all {
			if e.Type == typ && e.Seq > after {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func (r *diskRig) ackAll() {
	r.t.Helper()
	r.log.pump()
	r.c.ack(r.log.contiguous())
}

// storeFailures counts the daemon's log lines about refused writes.
func (r *diskRig) storeFailures() int { return strings.Count(r.d.out.String(), "store write failed") }

// waitStoreState waits for a published state document whose store part
// is ok, or not ok with an error containing text.
func (r *diskRig) waitStoreState(ok bool, text string) {
	r.t.Helper()
	r.state.WaitUntil(r.t, func(msgs []mqtttest.Message) bool {
		if len(msgs) == 0 {
			return false
		}
		s := decodeState(r.t, msgs[len(msgs)-1].Payload)
		return s.Store.OK == ok && strings.Contains(s.Store.Error, text)
	}, 20*time.Second)
}

// refusesToOpen checks that while the store refuses writes the pickup code,
// a cloud bin.open and a console open all open nothing: no lock pulses,
// no bin opens, no bin.unlocked is ever reported. The console's status
// still answers, saying its command went unrecorded, and why.
func (r *diskRig) refusesToOpen(why string) {
	r.t.Helper()
	stateIdx, eventIdx := r.state.Len(), len(r.log.all)
	failures := r.storeFailures()
	r.typeCode(diskPick)
	waitFor(r.t, 20*time.Second, "the entry to meet the refusing store", func() bool { return r.storeFailures() > failures })
	if rep := r.c.command("bin.open", map[string]any{"bin": 2}); errorCode(rep) != "store.unavailable" {
		r.t.Fatalf("bin.open with the store refusing writes: %v", rep)
	}
	if ans := r.cons.do("open 1"); !strings.Contains(ans, "ERR ") {
		r.t.Fatalf("console open with the store refusing writes: %q", ans)
	}
	ans := r.cons.do("status")
	if !strings.Contains(ans, "not recorded") || !strings.Contains(ans, why) {
		r.t.Fatalf("console status does not say the store fails (%s): %q", why, ans)
	}
	r.t.Logf("console status: %q", strings.SplitN(strings.TrimSpace(ans), "\r\n", 2)[0])
	// Give a pulse, had there been one, time to show in the state.
	time.Sleep(1500 * time.Millisecond)
	for _, m := range r.state.Messages()[stateIdx:] {
		for _, b := range decodeState(r.t, m.Payload).Bins {
			if b.Lock != "locked" || b.State == "open" {
				r.t.Fatalf("bin %d is %s with lock %s while the store refuses writes", b.ID, b.State, b.Lock)
			}
		}
	}
	r.log.pump()
	for _, e := range r.log.all[eventIdx:] {
		if e.Type == "bin.unlocked" {
			r.t.Fatalf("bin.unlocked while the store refused writes: %v", e.Data)
		}
	}
	r.t.Logf("with the store refusing writes (%s): nothing opened", why)
}

// recovered checks that the box works again and kept everything: the state
// says the store is fine, the pickup code opens bin 1 and the key leaves,
// the key and code counts are what they were, seq is gapless, and no
// bin.unlocked came from the time the store refused writes.
func (r *diskRig) recovered(refusedFrom uint64) {
	r.t.Helper()
	last := r.log.maxSeq()
	r.typeCode(diskPick)
	u := r.next("bin.unlocked", last)
	if dataInt(u, "bin") != 1 || dataString(u, "reason") != "pickup" {
		r.t.Fatalf("the pickup code opened %v", u.Data)
	}
	r.readers[0].take()
	r.next("key.picked_up", u.Seq)
	r.waitStoreState(true, "")
	rep := r.c.mustOK("state.get", nil)
	raw, _ := json.Marshal(rep["result"])
	s := decodeState(r.t, raw)
	if s.Keys != r.keys || s.AccessCodes != r.codes || !s.Store.OK {
		r.t.Fatalf("after recovery: %d keys, %d codes, store %+v; want %d keys, %d codes", s.Keys, s.AccessCodes, s.Store, r.keys, r.codes)
	}
	r.log.pump()
	evs := r.log.ordered() // fails on a gap
	for _, e := range evs {
		if e.Seq > refusedFrom && e.Seq < u.Seq && e.Type == "bin.unlocked" {
			r.t.Fatalf("a bin.unlocked from the time the store refused writes: seq %d %v", e.Seq, e.Data)
		}
	}
	r.t.Logf("recovered: %d events gapless, %d keys, %d codes", len(evs), s.Keys, s.AccessCodes)
}

// errorCode is the error code of a failed reply, "" for any other.
func errorCode(rep map[string]any) string {
	if rep["ok"] != false {
		return ""
	}
	e, _ := rep["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// dbCheck runs the daemon's offline check on its stopped database.
func (r *diskRig) dbCheck() {
	r.t.Helper()
	out, err := exec.Command(binPath, "-config", r.cfg, "db", "check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok") {
		r.t.Fatalf("db check: %v\n%s", err, out)
	}
}

// startRefused starts the daemon expecting it to stop at once, non-zero,
// with a message containing text.
func (r *diskRig) startRefused(text string) {
	r.t.Helper()
	d := startDaemon(r.t, r.cfg)
	if code := d.waitExit(); code == 0 {
		r.t.Fatalf("the daemon started on a data dir it cannot write")
	}
	if !strings.Contains(d.out.String(), text) {
		r.t.Fatalf("the daemon's refusal does not say %q:\n%s", text, d.out.String())
	}
}

// fill writes a junk file into dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "junk")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for size := len(chunk); size > 0; size /= 2 {
		for {
			if _, err := f.Write(chunk[:size]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill: %v", err)
				}
				break
			}
		}
	}
	f.Sync()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Bavail != 0 {
		t.Fatalf("the file system is not full: %d blocks free, %v", st.Bavail, err)
	}
	return path
}

// TestDiskFull turns the data dir full under the running daemon: once the
// database needs room it cannot get, the box says so in its state and the
// decisions it could not record are refused; when room is made again it
// carries on with nothing lost. It then remounts the
// data dir read-only under the stopped daemon: the daemon refuses to start,
// and starts fine once it is writable again.
func TestDiskFull(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	mount(t, "-t", "tmpfs", "-o", "size=2m", "tmpfs", data)
	r := newDiskRig(t, data)

	junk := fill(t, data)
	refusedFrom := r.log.maxSeq()
	// Pages bbolt already wrote still take writes: grow the database with
	// wrong entries, decisions of the right code's size, until it needs
	// pages the file system cannot give. A write that finds room among the
	// pages earlier commits freed still succeeds, so the disk counts as
	// full for the box once three entries in a row were refused: with no
	// commit between them, the free pages no longer change.
	inARow, first := 0, 0
	for i := 1; inARow < 3; i++ {
		if i > 300 {
			t.Fatalf("the store refused %d entries in a row at most on the full disk", inARow)
		}
		failures, last := r.storeFailures(), r.log.maxSeq()
		r.typeCode(fmt.Sprintf("9%07d", i))
		waitFor(t, 20*time.Second, "the wrong entry recorded or refused", func() bool {
			r.log.pump()
			return r.storeFailures() > failures || r.log.maxSeq() > last
		})
		if r.storeFailures() == failures {
			inARow = 0
			continue
		}
		if first == 0 {
			first = i
		}
		inARow++
	}
	t.Logf("the store first refused wrong entry %d after the disk filled, and then three in a row", first)
	r.waitStoreState(false, "no space left on device")
	// Whether the next decision fails too depends on the pages bbolt
	// picks: one small enough for the pages freed by earlier commits
	// still commits, and then it is recorded like any other. That every
	// open is refused while every write fails is TestPowerCutFailingWrites'
	// (ENOSPC on every write) and the read-only case below.

	if err := os.Remove(junk); err != nil {
		t.Fatal(err)
	}
	r.recovered(refusedFrom)
	r.d.stop()
	noRace(t, r.d)
	r.dbCheck()

	// Read-only while stopped: the daemon will not start on it, and says
	// why; writable again, it starts with everything there.
	if out, err := exec.Command("mount", "-o", "remount,ro", data).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v %s", err, out)
	}
	r.startRefused("read-only file system")
	if out, err := exec.Command("mount", "-o", "remount,rw", data).CombinedOutput(); err != nil {
		t.Fatalf("remount rw: %v %s", err, out)
	}
	r.start()
	// Drop the key back in for the pickup code.
	after := r.log.maxSeq()
	r.c.mustOK("bin.open", map[string]any{"bin": 1})
	r.readers[0].put(diskFob)
	r.next("key.dropped_off", after)
	r.recovered(r.log.maxSeq())
	r.d.stop()
	noRace(t, r.d)
}

// TestDiskReadOnly makes the data dir read-only under the running daemon
// the way an SD card does: an ext4 error with errors=remount-ro. (A plain
// "mount -o remount,ro" is refused while the daemon holds its database
// open for writing.) The box says so and opens nothing; it stops cleanly,
// refuses to start on the read-only file system, and once the file system
// is checked and mounted again it carries on with nothing lost.
func TestDiskReadOnly(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not found", tool)
		}
	}
	dir := t.TempDir()
	img, data := filepath.Join(dir, "disk.img"), filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	mount(t, "-o", "loop,errors=remount-ro", img, data)
	src, err := exec.Command("findmnt", "-no", "SOURCE", data).Output()
	if err != nil {
		t.Fatalf("findmnt: %v", err)
	}
	trigger := filepath.Join("/sys/fs/ext4", filepath.Base(strings.TrimSpace(string(src))), "trigger_fs_error")
	if _, err := os.Stat(trigger); err != nil {
		t.Skipf("skipped: the kernel offers no %s to fail ext4 with", trigger)
	}
	r := newDiskRig(t, data)

	refusedFrom := r.log.maxSeq()
	if err := os.WriteFile(trigger, []byte("smartboxd disk test\n"), 0o200); err != nil {
		t.Fatalf("fail the file system: %v", err)
	}
	r.refusesToOpen("read-only file system")
	r.waitStoreState(false, "read-only file system")
	r.d.stop()
	noRace(t, r.d)
	r.startRefused("read-only file system")

	unmount(t, data)
	if out, err := exec.Command("e2fsck", "-fy", img).CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck: %v %s", err, out)
		}
	}
	if out, err := exec.Command("mount", "-o", "loop", img, data).CombinedOutput(); err != nil {
		t.Fatalf("mount again: %v %s", err, out)
	}
	r.start()
	r.recovered(refusedFrom)
	r.d.stop()
	noRace(t, r.d)
	r.dbCheck()
}
