package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"smartboxd/internal/democloud"
)

// technician is a technician at a pseudo-terminal console.
type technician struct {
	t *testing.T
	p *port
	r *bufio.Reader
}

func newTechnician(t *testing.T, p *port) *technician {
	return &technician{t: t, p: p, r: bufio.NewReader(p.Master)}
}

// do sends one command line and returns the answer's lines up to and
// including its OK or ERR line.
func (c *technician) do(line string) []string {
	c.t.Helper()
	if _, err := c.p.Master.Write([]byte(line + "\r")); err != nil {
		c.t.Fatal(err)
	}
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			s, err := c.r.ReadString('\n')
			s = strings.TrimSpace(s)
			if i := strings.LastIndex(s, "# "); i >= 0 && strings.HasPrefix(s, "smartbox") {
				s = s[i+2:]
			}
			if s != "" {
				lines = append(lines, s)
			}
			if err != nil || s == "OK" || strings.HasPrefix(s, "ERR ") {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		c.t.Fatalf("%q: no answer; so far %q", line, lines)
	}
	return lines
}

func (c *technician) mustOK(line string) []string {
	c.t.Helper()
	lines := c.do(line)
	if len(lines) == 0 || lines[len(lines)-1] != "OK" {
		c.t.Fatalf("%q: %q", line, lines)
	}
	return lines
}

// TestDemoWalkthrough is the README's demo: the demo cloud provisions a
// simulated box, and a technician at the console drops the Front door key
// off and picks it up again with the keypad and the simulated readers; the
// cloud sees key.picked_up.
func TestDemoWalkthrough(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	out := &syncBuffer{}
	cloud, err := democloud.Start(democloud.Config{Listen: addr, BoxID: "demo-box", Provision: true, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()

	raw, err := readFile("../../configs/sim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	con := newPort(t)
	dir := t.TempDir()
	cfg := strings.NewReplacer(
		"data_dir: .run/sim", "data_dir: "+filepath.Join(dir, "data"),
		"tcp://127.0.0.1:18830", "tcp://"+addr,
		"port: stdio", "port: "+con.Name(),
		// Offline codes need a synchronised clock, which a test machine
		// may lack.
		"require_sync: true", "require_sync: false",
	).Replace(raw)
	d := startDaemon(t, writeConfig(t, dir, cfg))
	waitText := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("the cloud never printed %q:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitText("reply   demo-8   ok") // the offline key, last

	c := newTechnician(t, con)
	if got := c.do("bins"); got[len(got)-1] != "ERR console.login_required: log in first" {
		t.Fatalf("bins before login: %q", got)
	}
	c.mustOK("login 246810")
	c.mustOK("sim key 5678#")
	waitText("bin.unlocked           access_code_id=host-dropoff bin=1 reason=dropoff")
	c.mustOK("sim fob 1 0A1B2C3D4E")
	waitText("key.dropped_off        access_code_id=host-dropoff bin=1 fob=0A1B2C3D4E key_id=front-door via=access_code")
	bins := strings.Join(c.mustOK("bins"), "\n")
	if !strings.Contains(bins, "1    occupied  front-door  0A1B2C3D4E") {
		t.Fatalf("bins:\n%s", bins)
	}
	c.mustOK("sim key 1234#")
	waitText("bin.unlocked           access_code_id=guest-pickup bin=1 reason=pickup")
	c.mustOK("sim nofob 1")
	waitText("key.picked_up          access_code_id=guest-pickup bin=1 key_id=front-door via=access_code")
	// The virtual key's code works too, once the key is checked in.
	c.mustOK("sim key 97531#")
	waitText("reason=key.notCheckedIn")

	// The offline codes the cloud printed: the Front door key, back in
	// bin 1, opens for its pickup code; the Garage key goes in once.
	pickup, once := offlineCodeOf(t, out.String(), "pickup of front-door"), offlineCodeOf(t, out.String(), "dropoff_once of garage")
	c.mustOK("sim key 5678#")
	waitText("bin.unlocked           access_code_id=host-dropoff bin=1 reason=dropoff")
	c.mustOK("sim fob 1 0A1B2C3D4E")
	c.mustOK("sim key " + pickup + "#")
	waitText("bin.unlocked           bin=1 reason=pickup")
	c.mustOK("sim nofob 1")
	waitText("key.picked_up          bin=1 key_id=front-door via=offline_code")
	c.mustOK("sim key " + once + "#")
	waitText("bin.unlocked           bin=1 reason=dropoff")
	c.mustOK("sim fob 1 00C0FFEE42")
	waitText("key.dropped_off        bin=1 fob=00C0FFEE42 key_id=garage via=offline_code")
	// A wrong offline code is a wrong entry like any other.
	c.mustOK("sim key " + pickup[:13] + string('0'+(pickup[13]-'0'+1)%10) + "#")
	waitText("reason=code.unknown")
	d.stop()
	waitText("box     demo-box offline")
	if cloud.Acked() == 0 {
		t.Fatal("the cloud acked nothing")
	}
}

// offlineCodeOf finds the offline code the demo cloud printed for what
// ("pickup of front-door").
func offlineCodeOf(t *testing.T, out, what string) string {
	t.Helper()
	m := regexp.MustCompile(`offline code (\d{14}): ` + regexp.QuoteMeta(what) + `,`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the cloud printed no offline code for %s:\n%s", what, out)
	}
	return m[1]
}

// TestDBCommands checks, exports and compacts a database offline.
func TestDBCommands(t *testing.T) {
	addr := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().String()
	}()
	cloud, err := democloud.Start(democloud.Config{Listen: addr, BoxID: "db-box", Provision: true, Out: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("box_id: db-box\ndata_dir: %s\nmqtt: {broker: \"tcp://%s\"}\nhardware:\n  bins: [{id: 1}, {id: 2}]\n"+
		"trust:\n  keys: [{name: %s, ed25519: %q, roles: [admin]}]\n", filepath.Join(dir, "data"), addr, democloud.DemoKeyName, democloud.DemoPublicKey))
	d := startDaemon(t, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for cloud.Acked() < 8 { // started, settings, 3 keys, 3 access code statuses
		if time.Now().After(deadline) {
			t.Fatalf("provisioning did not finish: acked %d", cloud.Acked())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// With the daemon running, the database is locked.
	if out, err := exec.Command(binPath, "-config", cfg, "db", "compact").CombinedOutput(); err == nil || !strings.Contains(string(out), "timeout") && !strings.Contains(string(out), "in use") {
		t.Fatalf("compact with the daemon running: %v\n%s", err, out)
	}
	d.stop()

	out, err := exec.Command(binPath, "-config", cfg, "db", "check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok") {
		t.Fatalf("db check: %v\n%s", err, out)
	}
	out, err = exec.Command(binPath, "-config", cfg, "db", "export").Output()
	if err != nil {
		t.Fatalf("db export: %v", err)
	}
	var e struct {
		BoxID       string           `json:"box_id"`
		Bins        []map[string]any `json:"bins"`
		Keys        []map[string]any `json:"keys"`
		AccessCodes []map[string]any `json:"access_codes"`
	}
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, out)
	}
	if e.BoxID != "db-box" || len(e.Bins) != 2 || len(e.Keys) != 3 || len(e.AccessCodes) != 3 {
		t.Fatalf("export: %+v", e)
	}
	for _, code := range []string{"5678", "1234", "4321", "97531"} {
		if strings.Contains(string(out), code) {
			t.Fatalf("the export contains code %s", code)
		}
	}
	out, err = exec.Command(binPath, "-config", cfg, "db", "compact").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "bytes") {
		t.Fatalf("db compact: %v\n%s", err, out)
	}
	out, err = exec.Command(binPath, "-config", cfg, "db", "check").CombinedOutput()
	if err != nil {
		t.Fatalf("db check after compact: %v\n%s", err, out)
	}
	// The compacted database still serves the daemon.
	d = startDaemon(t, cfg)
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(d.out.String(), "smartboxd started") {
		if time.Now().After(deadline) {
			t.Fatalf("no start after compact:\n%s", d.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.stop()
	if out, err := exec.Command(binPath, "-config", cfg, "db", "frobnicate").CombinedOutput(); err == nil {
		t.Fatalf("an unknown db command succeeded: %s", out)
	}
}
