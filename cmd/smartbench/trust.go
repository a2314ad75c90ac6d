package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/crypto/nacl/box"

	"smartboxd/contract"
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
