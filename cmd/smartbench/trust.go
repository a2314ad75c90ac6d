package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/crypto/nacl/box"

	"smartboxd/contract"
	"smartboxd/offline"
	"smartboxd/trust"
)

// The trust paths: a signed command read and verified as Box.Receive
// does it (the strict JWS reader, the signature, the command envelope),
// beside a bare ed25519.Verify of the same signing input; and a sealed
// code opened with the box's identity, beside a bare box.OpenAnonymous of
// the same bytes. Repetitions are interleaved and medians reported.

type trustResult struct {
	verify, verifyBare samples
	open, openBare     samples
}

func benchTrust(work string, reps int) (*trustResult, error) {
	pub, priv, err := trust.Keygen()
	if err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(map[string]any{"id": "cmd-0001", "type": "access_code.upsert", "box_id": benchBoxID, "counter": 1,
		"data": map[string]any{"access_code_id": "a", "code_sealed": "x", "name": "guest", "type": "ongoing", "key_id": "k", "action": "pickup"}})
	token := []byte(trust.Sign(priv, "cloud", payload))
	dot := 0
	for i, c := range token {
		if c == '.' {
			dot = i
		}
	}
	signingInput := token[:dot]
	sig, err := base64.RawURLEncoding.DecodeString(string(token[dot+1:]))
	if err != nil {
		return nil, err
	}
	id, err := trust.LoadOrCreateIdentity(filepath.Join(work, "identity"))
	if err != nil {
		return nil, err
	}
	sealed, err := trust.Seal(id.PublicKey(), []byte("4826193075"))
	if err != nil {
		return nil, err
	}
	bpub, bpriv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	bareSealed, err := box.SealAnonymous(nil, []byte("4826193075"), bpub, rand.Reader)
	if err != nil {
		return nil, err
	}
	r := &trustResult{}
	lookup := func(string) (ed25519.PublicKey, bool) { return pub, true }
	for range reps {
		start := time.Now()
		_, inner, err := trust.Verify(token, lookup)
		if err == nil {
			_, err = contract.ParseCommand(inner, contract.DefaultLimits)
		}
		r.verify = append(r.verify, time.Since(start))
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		start = time.Now()
		ok := ed25519.Verify(pub, signingInput, sig)
		r.verifyBare = append(r.verifyBare, time.Since(start))
		if !ok {
			return nil, fmt.Errorf("bare verify failed")
		}
		start = time.Now()
		_, err = id.Open(sealed)
		r.open = append(r.open, time.Since(start))
		if err != nil {
			return nil, fmt.Errorf("open: %w", err)
		}
		start = time.Now()
		_, ok = box.OpenAnonymous(nil, bareSealed, bpub, bpriv)
		r.openBare = append(r.openBare, time.Since(start))
		if !ok {
			return nil, fmt.Errorf("bare open failed")
		}
	}
	return r, nil
}

// The offline-code path: the tag check the box runs for a 14-digit entry
// (offline.Key.Match over the candidate keys: the keys checked in for a
// pickup, the keys away for a drop-off), here with 48 and with 1,000
// candidates and the right key last, beside as many bare HMAC-SHA256
// computations of the same messages on one keyed state, Reset between.
type offlineResult struct {
	match48, bare48     samples
	match1000, bare1000 samples
}

func benchOffline(reps int) (*offlineResult, error) {
	key := make([]byte, offline.KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	k, err := offline.NewKey(key)
	if err != nil {
		return nil, err
	}
	start := offline.HourTime(offline.HourOf(time.Now()))
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = uuidOf("key", i)
	}
	r := &offlineResult{}
	run := func(cands []string, match, bare *samples) error {
		code, err := k.Generate(benchBoxID, cands[len(cands)-1], offline.Pickup, 4, start)
		if err != nil {
			return err
		}
		p, err := offline.Parse(code)
		if err != nil {
			return err
		}
		s := offline.HourOf(start)
		t0 := time.Now()
		_, ok := k.Match(benchBoxID, p, s, cands)
		*match = append(*match, time.Since(t0))
		if !ok {
			return fmt.Errorf("offline code not matched")
		}
		t0 = time.Now()
		m := hmac.New(sha256.New, key)
		var sum [sha256.Size]byte
		for _, id := range cands {
			m.Reset()
			fmt.Fprintf(m, "smartbox-offline-1|%s|%s|14|%d", benchBoxID, id, s)
			m.Sum(sum[:0])
		}
		*bare = append(*bare, time.Since(t0))
		return nil
	}
	for range reps {
		if err := run(ids[:48], &r.match48, &r.bare48); err != nil {
			return nil, err
		}
		if err := run(ids, &r.match1000, &r.bare1000); err != nil {
			return nil, err
		}
	}
	return r, nil
}
