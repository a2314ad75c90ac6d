package trust

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

func TestSealOpen(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"246810", "1234567890123456", "", strings.Repeat("x", MaxSealedPlaintext)} {
		sealed, err := Seal(id.PublicKey(), []byte(code))
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		got, err := id.Open(sealed)
		if err != nil || string(got) != code {
			t.Errorf("Open = %q, %v; want %q", got, err, code)
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(sealed); err != nil {
			t.Errorf("Seal wrote %q, not padded standard base64", sealed)
		}
		if got, err := id.Open(strings.TrimRight(sealed, "=")); err != nil || string(got) != code {
			t.Errorf("Open unpadded = %q, %v", got, err)
		}
	}
	if _, err := Seal(id.PublicKey(), make([]byte, MaxSealedPlaintext+1)); err == nil {
		t.Error("Seal took more than MaxSealedPlaintext")
	}
}

// TestOpenSealedFromNaCl opens a box sealed by nacl/box itself, as a cloud
// in another language would make it.
func TestOpenSealedFromNaCl(t *testing.T) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := box.SealAnonymous(nil, []byte("97531"), pub, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSealed(base64.StdEncoding.EncodeToString(b), pub, priv)
	if err != nil || string(got) != "97531" {
		t.Fatalf("OpenSealed = %q, %v", got, err)
	}
}

func TestOpenSealedRefuses(t *testing.T) {
	id, _ := NewIdentity()
	other, _ := NewIdentity()
	sealed, err := Seal(id.PublicKey(), []byte("246810"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sealed)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	toOther, _ := Seal(other.PublicKey(), []byte("246810"))
	tooLong, _ := box.SealAnonymous(nil, make([]byte, MaxSealedPlaintext+1), id.PublicKey(), rand.Reader)
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"plain code", "246810"},
		{"sealed to another box", toOther},
		{"ephemeral key changed", flip(0)},
		{"tag changed", flip(40)},
		{"ciphertext changed", flip(len(raw) - 1)},
		{"truncated", base64.StdEncoding.EncodeToString(raw[:len(raw)-1])},
		{"shorter than the overhead", base64.StdEncoding.EncodeToString(raw[:box.AnonymousOverhead-1])},
		{"url alphabet", base64.URLEncoding.EncodeToString(append([]byte{0xfb, 0xff}, raw...))},
		{"line break", sealed[:8] + "\n" + sealed[8:]},
		{"space", sealed + " "},
		{"bad padding", sealed + "="},
		{"too long", base64.StdEncoding.EncodeToString(tooLong)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := id.Open(tt.in)
			if !errors.Is(err, ErrSealed) || got != nil {
				t.Fatalf("Open = %q, %v; want ErrSealed", got, err)
			}
			if strings.Contains(err.Error(), "246810") {
				t.Errorf("error %q tells the code", err)
			}
		})
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity")
	id, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatalf("first LoadOrCreateIdentity: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	text, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(text), "x25519 ") || !strings.HasSuffix(string(text), "\n") || len(text) != identityFileSize {
		t.Errorf("file = %q", text)
	}
	again, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateIdentity: %v", err)
	}
	if again.Public() != id.Public() {
		t.Error("identity changed on reload")
	}
	pub, err := base64.StdEncoding.DecodeString(id.Public())
	if err != nil || len(pub) != 32 {
		t.Fatalf("Public() = %q", id.Public())
	}
	sealed, _ := Seal((*[32]byte)(pub), []byte("1357"))
	if got, err := again.Open(sealed); err != nil || string(got) != "1357" {
		t.Errorf("the reloaded identity opens %q, %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want the identity only", len(ents))
	}
}

func TestLoadOrCreateIdentityConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity")
	const n = 8
	pubs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := LoadOrCreateIdentity(path)
			if err != nil {
				t.Error(err)
				return
			}
			pubs[i] = id.Public()
		})
	}
	wg.Wait()
	for i := range pubs {
		if pubs[i] != pubs[0] {
			t.Fatalf("callers got different identities: %q", pubs)
		}
	}
}

func TestLoadOrCreateIdentityRefusesCorrupt(t *testing.T) {
	good, _ := NewIdentity()
	line := string(good.marshal())
	tests := []struct {
		name string
		text string
		mode os.FileMode
		want string
	}{
		{"empty", "", 0o600, "has 0 bytes"},
		{"truncated", line[:20], 0o600, "has 20 bytes"},
		{"no newline", line[:len(line)-1] + " ", 0o600, "not an x25519 identity"},
		{"raw bytes", string(make([]byte, identityFileSize)), 0o600, "not an x25519 identity"},
		{"other prefix", "y25519" + line[6:], 0o600, "not an x25519 identity"},
		{"bad base64", line[:10] + "!" + line[11:], 0o600, "bad base64"},
		{"readable by others", line, 0o644, "mode 0644"},
		{"readable by the group", line, 0o640, "mode 0640"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity")
			if err := os.WriteFile(path, []byte(tt.text), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			id, err := LoadOrCreateIdentity(path)
			if !errors.Is(err, ErrIdentity) || id != nil {
				t.Fatalf("LoadOrCreateIdentity = %v, %v; want ErrIdentity", id, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name the file and say %q", err, tt.want)
			}
			after, _ := os.ReadFile(path)
			if string(after) != tt.text {
				t.Error("a corrupt identity file was rewritten")
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "identity")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateIdentity(path); !errors.Is(err, ErrIdentity) {
			t.Errorf("err = %v, want ErrIdentity", err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "identity")
		if _, err := LoadOrCreateIdentity(path); err == nil {
			t.Error("identity made in a directory that does not exist")
		}
	})
}

func FuzzOpenSealed(f *testing.F) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	// Fixed keys so a crasher reproduces: the seeds are sealed to them.
	*priv = [32]byte{1, 2, 3}
	id, err := identityFromPrivate(priv[:])
	if err != nil {
		f.Fatal(err)
	}
	*pub = id.pub
	s, _ := Seal(pub, []byte("246810"))
	f.Add(s)
	f.Add(strings.TrimRight(s, "="))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		out, err := OpenSealed(in, pub, priv)
		if err != nil {
			if !errors.Is(err, ErrSealed) || out != nil {
				t.Fatalf("OpenSealed = %q, %v", out, err)
			}
			return
		}
		if len(out) > MaxSealedPlaintext {
			t.Fatalf("opened %d bytes", len(out))
		}
	})
}
