package democloud

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"smartboxd/firmware"
)

// DemoReleasePublicKey is the public key of the demo's release key, as
// configs/sim.yaml lists it in trust.release_keys.
const DemoReleasePublicKey = "sfQSLKle/upsTVZkzq7gACygSo3agZ8Qc6e3fR/MRrc="

// demoReleaseKey signs the demo's firmware manifests. Like the demo's
// command key it comes from a published phrase: it is for the simulated
// demo box only, and no real box may list it.
func demoReleaseKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("smartbox demo release key: for the simulated demo box only"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Update is a firmware update the demo cloud pushes: the binary at File,
// as Version, served over HTTP on Listen (a loopback address).
type Update struct {
	File    string
	Version string
	Listen  string // default 127.0.0.1:18831
}

// update is a prepared Update: its manifest and URL, and the server.
type update struct {
	version  string
	manifest string
	url      string
	srv      *http.Server
}

// startUpdate reads the binary, signs its manifest and serves it.
func startUpdate(u Update) (*update, error) {
	v, err := firmware.ParseVersion(u.Version)
	if err != nil {
		return nil, fmt.Errorf("democloud: -update-version: %w", err)
	}
	data, err := os.ReadFile(u.File)
	if err != nil {
		return nil, fmt.Errorf("democloud: %w", err)
	}
	if len(data) == 0 {
		return nil, errors.New("democloud: the update is empty")
	}
	if u.Listen == "" {
		u.Listen = "127.0.0.1:18831"
	}
	ln, err := net.Listen("tcp", u.Listen)
	if err != nil {
		return nil, fmt.Errorf("democloud: %w", err)
	}
	name := "/smartboxd-" + v.String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+name, func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data)) // range requests too
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	m := firmware.Manifest{Version: v, SHA256: sha256.Sum256(data), Size: int64(len(data))}
	return &update{version: v.String(), manifest: firmware.SignManifest(demoReleaseKey(), m),
		url: "http://" + ln.Addr().String() + name, srv: srv}, nil
}

// command is the firmware.update command; its fixed id makes a second
// sending harmless.
func (u *update) command() map[string]any {
	return map[string]any{"id": "demo-fw-" + u.version, "type": "firmware.update",
		"data": map[string]any{"manifest": u.manifest, "url": u.url}}
}
