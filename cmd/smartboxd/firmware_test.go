package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/firmware"
	"smartboxd/internal/mqtttest"
	"smartboxd/trust"
)

// signingCloudMu serialises newSigningCloud for the parallel tests here.
var signingCloudMu sync.Mutex

// fwBuilds are daemons built with a version stamp, by version, in the
// directory TestMain removes.
var (
	fwBuildsMu sync.Mutex
	fwBuilds   = map[string]string{}
)

// buildVersion builds the daemon with version v stamped in (stripped, no
// race detector: these are the releases a box downloads).
func buildVersion(t *testing.T, v string) string {
	t.Helper()
	fwBuildsMu.Lock()
	defer fwBuildsMu.Unlock()
	if p, ok := fwBuilds[v]; ok {
		return p
	}
	p := filepath.Join(filepath.Dir(binPath), "smartboxd-"+v)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+v, "-o", p, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", v, err, out)
	}
	fwBuilds[v] = p
	return p
}

// buildExiter builds a program that exits at once with status 3: a "new
// version" that never gets anywhere.
func buildExiter(t *testing.T) string {
	t.Helper()
	fwBuildsMu.Lock()
	defer fwBuildsMu.Unlock()
	if p, ok := fwBuilds["exiter"]; ok {
		return p
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\n\nimport \"os\"\n\nfunc main() { os.Exit(3) }\n"), 0o600)
	p := filepath.Join(filepath.Dir(binPath), "exiter")
	if out, err := exec.Command("go", "build", "-o", p, src).CombinedOutput(); err != nil {
		t.Fatalf("build the exiter: %v\n%s", err, out)
	}
	fwBuilds["exiter"] = p
	return p
}

// fwServer serves release files over loopback HTTP, with range requests
// (http.ServeContent). A file marked cut is served half, and then the
// response hangs, until a request with a Range header comes.
type fwServer struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	cut    map[string]bool
	ranges []string // the Range header of every request, "" for none
}

func newFWServer(t *testing.T) *fwServer {
	s := &fwServer{files: map[string][]byte{}, cut: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *fwServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data, ok := s.files[r.URL.Path]
	cut := s.cut[r.URL.Path]
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if cut && r.Header.Get("Range") == "" {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	http.ServeContent(w, r, "smartboxd", time.Time{}, bytes.NewReader(data))
}

func (s *fwServer) put(name string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files["/"+name] = data
	return s.URL + "/" + name
}

func (s *fwServer) rangesSeen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// unit stands in for systemd: it runs the installed binary and starts it
// again whenever it exits, until stopped.
type unit struct {
	t      *testing.T
	path   string
	cfg    string
	out    *syncBuffer
	mu     sync.Mutex
	cur    *exec.Cmd
	starts int
	halt   bool
	done   chan struct{}
}

func startUnit(t *testing.T, path, cfg string) *unit {
	u := &unit{t: t, path: path, cfg: cfg, out: &syncBuffer{}}
	u.start()
	t.Cleanup(func() {
		u.stop()
		if t.Failed() {
			t.Logf("unit output:\n%s", u.out.String())
		}
	})
	return u
}

func (u *unit) start() {
	u.mu.Lock()
	u.halt = false
	u.done = make(chan struct{})
	u.mu.Unlock()
	go func() {
		defer close(u.done)
		for {
			cmd := exec.Command(u.path, "-config", u.cfg)
			cmd.Stdout, cmd.Stderr = u.out, u.out
			u.mu.Lock()
			if u.halt || u.starts > 30 {
				u.mu.Unlock()
				return
			}
			if err := cmd.Start(); err != nil {
				u.mu.Unlock()
				return
			}
			u.cur = cmd
			u.starts++
			u.mu.Unlock()
			cmd.Wait()
			time.Sleep(100 * time.Millisecond) // systemd's RestartSec, shortened
		}
	}()
}

// kill9 kills the running process as a power cut would; the unit starts
// it again.
func (u *unit) kill9() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cur != nil && u.cur.Process != nil {
		u.cur.Process.Kill()
	}
}

// stop ends the unit: SIGTERM, as systemctl stop sends.
func (u *unit) stop() {
	u.mu.Lock()
	u.halt = true
	if u.cur != nil && u.cur.Process != nil {
		u.cur.Process.Signal(syscall.SIGTERM)
	}
	done := u.done
	u.mu.Unlock()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		u.kill9()
		<-done
	}
}

func (u *unit) startCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.starts
}

// fwBox is a box whose installed binary is release 1.0.0 in a read-only
// directory, under a unit, with a signing cloud and a release key.
type fwBox struct {
	t       *testing.T
	box     string
	data    string
	cfg     string
	cloud   *signingCloud
	release ed25519.PrivateKey
	srv     *fwServer
	unit    *unit
	ackStop chan struct{}
	ackDone chan struct{}
}

func newFWBox(t *testing.T, b *mqtttest.Broker, box string, trialS int) *fwBox {
	t.Helper()
	dir := t.TempDir()
	_, release, err := trust.Keygen()
	if err != nil {
		t.Fatal(err)
	}
	signingCloudMu.Lock() // newSigningCloud numbers its clients without a lock
	cloud := newSigningCloud(t, b, box, "cloud")
	signingCloudMu.Unlock()
	f := &fwBox{t: t, box: box, data: filepath.Join(dir, "data"), cloud: cloud, release: release, srv: newFWServer(t)}
	usr := filepath.Join(dir, "usr")
	os.MkdirAll(usr, 0o755)
	installed := filepath.Join(usr, "smartboxd")
	raw, err := os.ReadFile(buildVersion(t, "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(installed, raw, 0o755)
	os.Chmod(usr, 0o555) // a read-only /usr: the update never writes there
	t.Cleanup(func() { os.Chmod(usr, 0o755) })
	f.cfg = writeConfig(t, dir, fmt.Sprintf(`box_id: %s
data_dir: %s
mqtt: {broker: %q}
hardware: {backend: sim, bins: [{id: 1}]}
trust:
  keys: [%s]
  release_keys: [%q]
firmware: {trial_s: %d}
`, box, f.data, b.URL(), f.cloud.entry("admin"), trust.EncodePublicKey(release.Public().(ed25519.PublicKey)), trialS))
	f.unit = startUnit(t, installed, f.cfg)
	return f
}

// autoAck acks every event the cloud sees, as a healthy cloud does.
func (f *fwBox) autoAck() {
	f.ackStop, f.ackDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(f.ackDone)
		var last uint64
		for {
			select {
			case <-f.ackStop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var top uint64
			for _, e := range decodeEvents(f.cloud.events.Messages()) {
				top = max(top, e.Seq)
			}
			if top > last {
				raw, _ := json.Marshal(map[string]any{"box_id": f.box, "seq": top})
				tok := f.cloud.c.Paho().Publish(f.cloud.p+"/events/ack", 1, false, trust.Sign(f.cloud.priv, f.cloud.name, raw))
				tok.WaitTimeout(5 * time.Second)
				last = top
			}
		}
	}()
	f.t.Cleanup(f.stopAcks)
}

func (f *fwBox) stopAcks() {
	if f.ackStop != nil {
		close(f.ackStop)
		<-f.ackDone
		f.ackStop = nil
	}
}

// manifest signs a manifest for data as version v.
func (f *fwBox) manifest(key ed25519.PrivateKey, v string, data []byte) string {
	ver, err := firmware.ParseVersion(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return firmware.SignManifest(key, firmware.Manifest{Version: ver, SHA256: sha256.Sum256(data), Size: int64(len(data))})
}

func (f *fwBox) update(manifest, url string) map[string]any {
	f.t.Helper()
	f.cloud.n++
	id := fmt.Sprintf("fw-%d", f.cloud.n)
	return f.cloud.send(id, f.cloud.signed(id, "firmware.update", map[string]any{"manifest": manifest, "url": url}))
}

// waitFirmware waits for the firmware.status event of version v in state.
func (f *fwBox) waitFirmware(v, state string) event {
	f.t.Helper()
	return f.cloud.waitEvent(contract.EventFirmwareStatus, func(e event) bool {
		return e.Data["version"] == v && e.Data["state"] == state
	})
}

// waitRunning waits for the retained status of the box online with
// version v, committed c and trial (nil for none).
func (f *fwBox) waitRunning(v, committed string, trial any) {
	f.t.Helper()
	f.cloud.status.WaitUntil(f.t, func(msgs []mqtttest.Message) bool {
		if len(msgs) == 0 {
			return false
		}
		var s struct {
			Online   bool           `json:"online"`
			Version  string         `json:"version"`
			Firmware map[string]any `json:"firmware"`
		}
		json.Unmarshal(msgs[len(msgs)-1].Payload, &s)
		return s.Online && s.Version == v && s.Firmware != nil && s.Firmware["committed"] == committed && s.Firmware["trial"] == trial
	}, 40*time.Second)
}

// state reads the firmware directory's state file.
func (f *fwBox) state() firmware.State {
	f.t.Helper()
	d, err := firmware.OpenDir(f.data)
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := d.ReadState()
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// files lists the firmware directory.
func (f *fwBox) files() []string {
	entries, _ := os.ReadDir(filepath.Join(f.data, firmware.DirName))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestFirmwareUpdateCommits is the happy path on real processes: a
// release key made and a release signed with the daemon's own commands,
// the box at 1.0.0 takes 1.1.0 from a loopback server, relaunches into its
// trial in the same process, is acked and commits, and refuses to go back.
func TestFirmwareUpdateCommits(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	f := newFWBox(t, b, "box-fw-ok", 30)
	f.autoAck()
	f.waitRunning("1.0.0", "1.0.0", nil)

	// The operator's side: a release key and a signed release.
	work := t.TempDir()
	keyFile := filepath.Join(work, "release.key")
	out, err := exec.Command(binPath, "keygen", "-release", "-out", keyFile).Output()
	if err != nil || !strings.Contains(string(out), "release_keys:") {
		t.Fatalf("keygen -release: %v\n%s", err, out)
	}
	rel := filepath.Join(work, "smartboxd-1.1.0")
	raw, _ := os.ReadFile(buildVersion(t, "1.1.0"))
	os.WriteFile(rel, raw, 0o755)
	out, err = exec.Command(binPath, "release", "sign", "-key", keyFile, "-version", "1.1.0", rel).Output()
	if err != nil {
		t.Fatalf("release sign: %v\n%s", err, out)
	}
	written, _ := os.ReadFile(rel + ".manifest")
	if jws := strings.TrimSpace(string(out)); jws == "" || jws != strings.TrimSpace(string(written)) {
		t.Fatalf("release sign printed %q, wrote %q", out, written)
	}
	priv, _ := trust.ParsePrivateKey(string(mustRead(t, keyFile)))
	m, err := firmware.ParseManifest([]byte(strings.TrimSpace(string(out))), []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)})
	if err != nil || m.Version.String() != "1.1.0" || m.Size != int64(len(raw)) || m.SHA256 != sha256.Sum256(raw) {
		t.Fatalf("the signed manifest %+v: %v", m, err)
	}
	// The box's release key signs here; the CLI's key is another fleet's.
	url := f.srv.put("smartboxd-1.1.0", raw)
	if r := f.update(strings.TrimSpace(string(out)), url); errCode(r) != contract.CodeFirmwareSignatureInvalid {
		t.Fatalf("a manifest by a release key this box does not list: %v", r)
	}

	r := f.update(f.manifest(f.release, "1.1.0", raw), url)
	if r["ok"] != true {
		t.Fatalf("firmware.update: %v", r)
	}
	for _, st := range []string{"downloading", "verified", "installed", "trial", "committed"} {
		f.waitFirmware("1.1.0", st)
	}
	f.waitRunning("1.1.0", "1.1.0", nil)
	if n := f.unit.startCount(); n != 1 {
		t.Errorf("the unit started the binary %d times; the hand-over must keep the process", n)
	}
	if s := f.state(); s.Committed != "1.1.0" || s.Trial != "" || s.Starts != 0 {
		t.Errorf("state after the commit: %+v", s)
	}

	// Not newer than the running version: refused, whoever signs.
	for _, v := range []string{"1.0.9", "1.1.0"} {
		if r := f.update(f.manifest(f.release, v, raw), url); errCode(r) != contract.CodeFirmwareDowngrade {
			t.Errorf("update to %s on 1.1.0: %v", v, r)
		}
	}

	// systemctl restart: the installed 1.0.0 hands over to the committed 1.1.0.
	f.unit.stop()
	f.unit.start()
	f.waitRunning("1.1.0", "1.1.0", nil)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFirmwareRefusals: a bad manifest or URL is refused before a byte is
// written; a binary that is not what the manifest signs is downloaded,
// refused and removed; the box keeps running what it ran.
func TestFirmwareRefusals(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	f := newFWBox(t, b, "box-fw-bad", 30)
	f.autoAck()
	f.waitRunning("1.0.0", "1.0.0", nil)
	raw, _ := os.ReadFile(buildVersion(t, "1.1.0"))
	url := f.srv.put("smartboxd-1.1.0", raw)
	good := f.manifest(f.release, "1.1.0", raw)
	for _, tc := range []struct {
		name, manifest, url, code string
	}{
		{"signed by the command key", f.manifest(f.cloud.priv, "1.1.0", raw), url, contract.CodeFirmwareSignatureInvalid},
		{"not a jws", `{"version":"1.1.0"}`, url, contract.CodeFirmwareSignatureInvalid},
		{"a payload with more", trust.Sign(f.release, "release", []byte(`{"version":"1.1.0","sha256":"`+strings.Repeat("0", 64)+`","size":5,"url":"x"}`)), url, contract.CodeFirmwareSignatureInvalid},
		{"a version with a suffix", trust.Sign(f.release, "release", []byte(`{"version":"1.1.0-rc1","sha256":"`+strings.Repeat("0", 64)+`","size":5}`)), url, contract.CodeFirmwareSignatureInvalid},
		{"a downgrade", f.manifest(f.release, "0.9.0", raw), url, contract.CodeFirmwareDowngrade},
		{"http to another host", good, "http://example.com/smartboxd", contract.CodeCmdInvalid},
		{"ftp", good, "ftp://127.0.0.1/smartboxd", contract.CodeCmdInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := f.update(tc.manifest, tc.url); errCode(r) != tc.code {
				t.Fatalf("reply %v, want %s", r, tc.code)
			}
		})
	}
	if got := f.files(); len(got) != 0 {
		t.Fatalf("refused updates wrote %v", got)
	}

	// Accepted, downloaded, and not what was signed: one byte changed, and
	// a file of another size.
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 1
	for i, other := range [][]byte{flipped, append([]byte("not "), raw...)} {
		if r := f.update(f.manifest(f.release, fmt.Sprintf("1.1.%d", i+1), other), url); r["ok"] != true {
			t.Fatalf("firmware.update: %v", r)
		}
		f.waitFailed(fmt.Sprintf("1.1.%d", i+1), contract.CodeFirmwareHashMismatch)
	}
	if got := f.files(); len(got) != 0 {
		t.Fatalf("a refused download left %v", got)
	}
	if s := f.state(); s.Trial != "" || s.Committed != "" {
		t.Fatalf("state after a hash mismatch: %+v", s)
	}
	// The box takes another update after a failure: one the server does
	// not have fails for good, and the box runs on.
	if r := f.update(good, f.srv.URL+"/nothing-here"); r["ok"] != true {
		t.Fatalf("firmware.update after a failure: %v", r)
	}
	f.waitFailed("1.1.0", contract.CodeFirmwareDownloadFailed)
	f.waitRunning("1.0.0", "1.0.0", nil)
	if got := f.files(); len(got) != 0 {
		t.Fatalf("a failed download left %v", got)
	}
}

// waitFailed waits for the failed event of version v with an error of code.
func (f *fwBox) waitFailed(v, code string) event {
	f.t.Helper()
	return f.cloud.waitEvent(contract.EventFirmwareStatus, func(e event) bool {
		msg, _ := e.Data["error"].(string)
		return e.Data["version"] == v && e.Data["state"] == "failed" && strings.HasPrefix(msg, code+": ")
	})
}

// partialSize is the size of the download in progress, -1 when none.
func (f *fwBox) partialSize() int64 {
	for _, n := range f.files() {
		if strings.HasSuffix(n, ".partial") {
			if fi, err := os.Stat(filepath.Join(f.data, firmware.DirName, n)); err == nil {
				return fi.Size()
			}
		}
	}
	return -1
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFirmwareResumesAfterKill: a download cut mid-way by a kill -9
// resumes after the restart with a range request from the bytes the box
// kept, and the update goes on to committed. Meanwhile another update is
// busy.
func TestFirmwareResumesAfterKill(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	f := newFWBox(t, b, "box-fw-resume", 30)
	f.autoAck()
	f.waitRunning("1.0.0", "1.0.0", nil)
	raw, _ := os.ReadFile(buildVersion(t, "1.1.0"))
	url := f.srv.put("smartboxd-1.1.0", raw)
	f.srv.mu.Lock()
	f.srv.cut["/smartboxd-1.1.0"] = true
	f.srv.mu.Unlock()
	m := f.manifest(f.release, "1.1.0", raw)
	if r := f.update(m, url); r["ok"] != true {
		t.Fatalf("firmware.update: %v", r)
	}
	half := int64(len(raw) / 2)
	eventually(t, "half the binary downloaded", func() bool { return f.partialSize() == half })
	if r := f.update(f.manifest(f.release, "1.2.0", raw), url); errCode(r) != contract.CodeFirmwareBusy {
		t.Fatalf("a second update while downloading: %v", r)
	}
	f.unit.kill9()
	f.waitFirmware("1.1.0", "committed")
	f.waitRunning("1.1.0", "1.1.0", nil)
	want := fmt.Sprintf("bytes=%d-", half)
	ranges := f.srv.rangesSeen()
	found := false
	for _, r := range ranges {
		found = found || r == want
	}
	if !found {
		t.Fatalf("requests %q, want one resuming with %q", ranges, want)
	}
}

// TestFirmwareRollback: a new version that exits at once, and one that
// never comes online, are each started twice and then rolled back to the
// version before them, which reports the rollback and why.
func TestFirmwareRollback(t *testing.T) {
	t.Parallel()
	t.Run("exits at once", func(t *testing.T) {
		t.Parallel()
		b := mqtttest.Start(t)
		f := newFWBox(t, b, "box-fw-exit", 30)
		f.autoAck()
		f.waitRunning("1.0.0", "1.0.0", nil)
		raw, _ := os.ReadFile(buildExiter(t))
		if r := f.update(f.manifest(f.release, "1.1.0", raw), f.srv.put("exiter", raw)); r["ok"] != true {
			t.Fatalf("firmware.update: %v", r)
		}
		e := f.waitFirmware("1.1.0", "rolled_back")
		if msg, _ := e.Data["error"].(string); !strings.HasPrefix(msg, contract.CodeFirmwareTrialFailed+": ") || !strings.Contains(msg, "exited") {
			t.Fatalf("rolled_back %v", e.Data)
		}
		f.waitRunning("1.0.0", "1.0.0", nil)
		// The binary that ran, the exit, twice, and the rollback to 1.0.0.
		if n := f.unit.startCount(); n != 3 {
			t.Errorf("%d starts, want 3: the update's relaunch, a restart, the rollback", n)
		}
		if s := f.state(); s.Trial != "" || s.Committed != "" || s.Rollback == nil {
			t.Errorf("state after the rollback %+v", s)
		}
		for _, n := range f.files() {
			if strings.HasPrefix(n, "smartboxd-1.1.0") {
				t.Errorf("the rolled-back binary %s is still there", n)
			}
		}
	})
	t.Run("never online", func(t *testing.T) {
		t.Parallel()
		b := mqtttest.Start(t)
		f := newFWBox(t, b, "box-fw-offline", 3)
		f.autoAck()
		f.waitRunning("1.0.0", "1.0.0", nil)
		raw, _ := os.ReadFile(buildVersion(t, "1.1.0"))
		if r := f.update(f.manifest(f.release, "1.1.0", raw), f.srv.put("smartboxd-1.1.0", raw)); r["ok"] != true {
			t.Fatalf("firmware.update: %v", r)
		}
		f.waitFirmware("1.1.0", "verified")
		b.Stop() // the new version finds no broker
		eventually(t, "the rollback", func() bool { return f.state().Rollback != nil })
		b.Restart()
		e := f.waitFirmware("1.1.0", "rolled_back")
		if msg, _ := e.Data["error"].(string); !strings.HasPrefix(msg, contract.CodeFirmwareTrialFailed+": ") || !strings.Contains(msg, "not online") {
			t.Fatalf("rolled_back %v", e.Data)
		}
		// What the trial said in its outbox gets out once the old version is back.
		f.waitFirmware("1.1.0", "trial")
		f.waitFailed("1.1.0", contract.CodeFirmwareTrialFailed)
		f.waitRunning("1.0.0", "1.0.0", nil)
		if n := f.unit.startCount(); n != 1 {
			t.Errorf("%d starts: a trial that misses its deadline relaunches in the same process", n)
		}
	})
}

// TestFirmwareKillAtEveryStep: a kill -9 once each step of an update is
// reported leaves a box that starts again and carries the update through
// to a committed version.
func TestFirmwareKillAtEveryStep(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	raw, _ := os.ReadFile(buildVersion(t, "1.1.0"))
	for _, step := range []string{"downloading", "verified", "installed", "trial", "committed"} {
		t.Run(step, func(t *testing.T) {
			f := newFWBox(t, b, "box-fw-kill-"+step, 30)
			f.autoAck()
			f.waitRunning("1.0.0", "1.0.0", nil)
			if r := f.update(f.manifest(f.release, "1.1.0", raw), f.srv.put("smartboxd-1.1.0", raw)); r["ok"] != true {
				t.Fatalf("firmware.update: %v", r)
			}
			f.waitFirmware("1.1.0", step)
			f.unit.kill9()
			f.waitFirmware("1.1.0", "committed")
			f.waitRunning("1.1.0", "1.1.0", nil)
			if s := f.state(); s.Committed != "1.1.0" || s.Trial != "" || s.Rollback != nil {
				t.Fatalf("state %+v", s)
			}
		})
	}
}
