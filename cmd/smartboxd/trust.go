package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"smartboxd/device"
	"smartboxd/internal/atomicfile"
	"smartboxd/internal/config"
	"smartboxd/trust"
)

// IdentityFile is the box's X25519 identity in the data directory.
const IdentityFile = "identity"

// loadIdentity reads the box's identity, making it on first use.
func loadIdentity(cfg *config.Config) (*trust.Identity, error) {
	if err := atomicfile.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return trust.LoadOrCreateIdentity(filepath.Join(cfg.DataDir, IdentityFile))
}

// boxTrust is the device's view of the config's trust section. The config
// was validated, so every key parses.
func boxTrust(cfg *config.Config, id *trust.Identity) (device.Trust, error) {
	t := device.Trust{SealCodes: cfg.Trust.SealCodes, Identity: id}
	for i, k := range cfg.Trust.Keys {
		pub, err := trust.ParsePublicKey(k.Ed25519)
		if err != nil {
			return device.Trust{}, fmt.Errorf("trust.keys[%d].ed25519: %w", i, err)
		}
		tk := device.TrustKey{Name: k.Name, Public: pub}
		for _, r := range k.Roles {
			role, err := trust.ParseRole(r)
			if err != nil {
				return device.Trust{}, fmt.Errorf("trust.keys[%d].roles: %w", i, err)
			}
			tk.Roles = append(tk.Roles, role)
		}
		t.Keys = append(t.Keys, tk)
	}
	return t, nil
}

// identityCommand prints the box's seal_key, the public half of its
// identity, making the identity when the box has none yet (as its first
// start would), so a box can be provisioned before it first runs.
func identityCommand(cfg *config.Config, args []string, out io.Writer) error {
	if len(args) != 0 {
		return &exitError{code: 2, err: errors.New("usage: smartboxd -config FILE identity")}
	}
	id, err := loadIdentity(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, id.Public())
	return nil
}

// keygenCommand makes an Ed25519 command signing key: the private key (its
// 32-byte seed, base64) goes to -out, mode 0600, never to the terminal;
// the public key is printed as the trust.keys entry a box's config needs.
func keygenCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("smartboxd keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the file to write the private key to (mode 0600; must not exist)")
	name := fs.String("name", "cloud", "the key's name, its kid")
	role := fs.String("role", "admin", "the role of the printed trust.keys entry")
	release := fs.Bool("release", false, "a release key, which signs firmware manifests: print the trust.release_keys entry")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: errors.New("")}
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("usage: smartboxd keygen -out FILE [-name NAME] [-role ROLE]")}
	}
	if _, err := trust.ParseRole(*role); err != nil {
		return &exitError{code: 2, err: err}
	}
	pub, priv, err := trust.Keygen()
	if err != nil {
		return err
	}
	if err := atomicfile.Create(*out, []byte(trust.EncodePrivateKey(priv)), 0o600); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if *release {
		fmt.Fprintf(stdout, "trust:\n  release_keys: [\"%s\"]\n", trust.EncodePublicKey(pub))
		return nil
	}
	fmt.Fprintf(stdout, "trust:\n  keys:\n    - {name: %s, ed25519: \"%s\", roles: [%s]}\n", *name, trust.EncodePublicKey(pub), *role)
	return nil
}
