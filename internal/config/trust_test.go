package config

import (
	"slices"
	"strings"
	"testing"

	"smartboxd/trust"
)

func TestTrustKeys(t *testing.T) {
	pub, _, err := trust.Keygen()
	if err != nil {
		t.Fatal(err)
	}
	good := trust.EncodePublicKey(pub)
	for _, tc := range []struct {
		name string
		keys string
		want []string // field: reason fragment
	}{
		{"valid", `[{name: cloud, ed25519: "` + good + `", roles: [admin]}, {name: ops-7, ed25519: "` + good + `", roles: [open, ack]}]`, nil},
		{"bad base64", `[{name: cloud, ed25519: "not base64!", roles: [admin]}]`, []string{"trust.keys[0].ed25519: bad base64"}},
		{"wrong length", `[{name: cloud, ed25519: "AAAA", roles: [admin]}]`, []string{"trust.keys[0].ed25519: wrong key length: 3 bytes, want 32"}},
		{"unknown role", `[{name: cloud, ed25519: "` + good + `", roles: [admin, root]}]`, []string{`trust.keys[0].roles[1]: unknown role "root"`}},
		{"no roles", `[{name: cloud, ed25519: "` + good + `"}]`, []string{"trust.keys[0].roles: required"}},
		{"duplicate names", `[{name: cloud, ed25519: "` + good + `", roles: [admin]}, {name: cloud, ed25519: "` + good + `", roles: [ack]}]`,
			[]string{`trust.keys[1].name: "cloud" is also the name of trust.keys[0]`}},
		{"no name", `[{ed25519: "` + good + `", roles: [admin]}]`, []string{"trust.keys[0].name: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probs := problemsOf(t, head+simBins+"trust:\n  keys: "+tc.keys+"\n")
			var got []string
			for _, p := range probs {
				got = append(got, p.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %q, want it to start %q", got[i], w)
				}
			}
		})
	}
	c, err := Parse([]byte(head + simBins + "trust:\n  keys: [{name: cloud, ed25519: \"" + good + "\", roles: [admin]}]\n  seal_codes: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Trust.SealCodes || len(c.Trust.Keys) != 1 || !slices.Equal(c.Trust.Keys[0].Roles, []string{"admin"}) {
		t.Fatalf("trust %+v", c.Trust)
	}
}
