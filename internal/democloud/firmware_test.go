package democloud

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"smartboxd/firmware"
	"smartboxd/trust"
)

// TestPushesUpdate: with an update, the cloud sends a box that comes
// online at another version a firmware.update whose manifest the demo
// release key (the one configs/sim.yaml lists) signs, for a file it serves
// with range requests.
func TestPushesUpdate(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "smartboxd")
	data := []byte("a smartboxd binary, pretend")
	os.WriteFile(bin, data, 0o755)
	addr := freeAddr(t)
	c, err := Start(Config{Listen: addr, BoxID: "b1", Out: io.Discard,
		Update: Update{File: bin, Version: "1.4.0", Listen: freeAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	box := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("b1"))
	if tok := box.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer box.Disconnect(100)
	var mu sync.Mutex
	var cmds [][]byte
	box.Subscribe("smartbox/b1/cmd", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		cmds = append(cmds, m.Payload())
	}).WaitTimeout(5 * time.Second)
	box.Publish("smartbox/b1/status", 1, false, `{"online":true,"version":"1.3.0"}`).WaitTimeout(5 * time.Second)
	waitFor(t, "the update", func() bool { mu.Lock(); defer mu.Unlock(); return len(cmds) == 1 })

	jws, err := trust.Parse(cmds[0])
	if err != nil {
		t.Fatal(err)
	}
	var cmd struct {
		Type string `json:"type"`
		Data struct {
			Manifest string `json:"manifest"`
			URL      string `json:"url"`
		} `json:"data"`
	}
	json.Unmarshal(jws.Payload, &cmd)
	release, _ := trust.ParsePublicKey(DemoReleasePublicKey)
	m, err := firmware.ParseManifest([]byte(cmd.Data.Manifest), []ed25519.PublicKey{release})
	if cmd.Type != "firmware.update" || err != nil || m.Version.String() != "1.4.0" || m.Size != int64(len(data)) {
		t.Fatalf("command %s %+v: manifest %+v, %v", cmd.Type, cmd.Data, m, err)
	}
	req, _ := http.NewRequest(http.MethodGet, cmd.Data.URL, nil)
	req.Header.Set("Range", "bytes=2-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || string(body) != string(data[2:]) {
		t.Fatalf("GET with a range: %s %q", resp.Status, body)
	}
}
