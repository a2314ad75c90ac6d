package mqttlink

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smartboxd/internal/mqtttest"
)

func tlsConfig(t testing.TB, ca, cert, key string) *tls.Config {
	t.Helper()
	cfg, err := TLSConfig(ca, cert, key)
	if err != nil {
		t.Fatalf("tls config: %v", err)
	}
	return cfg
}

// TestMutualTLS: over ssl:// the link checks the broker's certificate
// against the CA and presents its own.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	pki := mqtttest.NewPKI(t)
	br := mqtttest.Start(t, mqtttest.WithTLS(pki))
	b := startBox(t, t.TempDir())
	cloud := mqtttest.Dial(t, br.URL())
	status := cloud.Subscribe(prefix + "/status")
	cc := &cloudCmd{c: cloud, replies: cloud.Subscribe(prefix + "/cmd/reply")}
	l := startLink(t, b, br.TLSURL(), func(c *Config) { c.TLS = tlsConfig(t, pki.CAFile, pki.ClientCert, pki.ClientKey) })
	status.WaitUntil(t, isOnline(true), wait)
	l.waitSubscribed(1)
	if r := cc.send(t, []byte(`{"id":"tls","type":"state.get"}`)); !r.OK {
		t.Errorf("command over TLS: %+v", r)
	}
	if s := l.Stats(); !s.Connected || s.Broker != br.TLSURL() {
		t.Errorf("stats %+v", s)
	}
}

// TestClientCertificateRefused: a client certificate from another CA is
// refused by the broker; the link does not connect, says why, and retries.
func TestClientCertificateRefused(t *testing.T) {
	t.Parallel()
	pki := mqtttest.NewPKI(t)
	other := pki.OtherCA(t)
	br := mqtttest.Start(t, mqtttest.WithTLS(pki))
	b := startBox(t, t.TempDir())
	l := startLink(t, b, br.TLSURL(), func(c *Config) { c.TLS = tlsConfig(t, pki.CAFile, other.ClientCert, other.ClientKey) })
	eventually(t, "two failed attempts", func() bool { return len(l.logs.lines("retry=true")) >= 2 })
	lines := l.logs.lines("level=ERROR", "broker="+br.TLSURL(), "TLS")
	if len(lines) == 0 {
		t.Errorf("no error line naming the broker and the TLS refusal:\n%s", l.logs)
	}
	if s := l.Stats(); s.Connected || s.LastError == "" {
		t.Errorf("stats %+v", s)
	}
	if st := statusRetained(t, br); st != nil {
		t.Errorf("a refused link published its status: %s", st)
	}
}

// TestWrongServerCA: a broker whose certificate the configured CA did not
// sign is refused with a clear error line naming the x509 reason.
func TestWrongServerCA(t *testing.T) {
	t.Parallel()
	pki := mqtttest.NewPKI(t)
	other := pki.OtherCA(t)
	br := mqtttest.Start(t, mqtttest.WithTLS(pki))
	b := startBox(t, t.TempDir())
	l := startLink(t, b, br.TLSURL(), func(c *Config) { c.TLS = tlsConfig(t, other.CAFile, pki.ClientCert, pki.ClientKey) })
	eventually(t, "error logged", func() bool { return len(l.logs.lines("level=ERROR", "broker="+br.TLSURL())) > 0 })
	line := l.logs.lines("level=ERROR", "broker="+br.TLSURL())[0]
	for _, want := range []string{"certificate", "x509: certificate signed by unknown authority"} {
		if !strings.Contains(line, want) {
			t.Errorf("error line %q does not mention %q", line, want)
		}
	}
	if l.Stats().Connected {
		t.Errorf("connected to a broker the CA did not sign")
	}
	select {
	case err := <-l.done:
		t.Fatalf("Run returned: %v", err)
	default:
	}
}

// statusRetained returns the retained status on the broker, nil if none.
// The broker sends retained messages right after the SUBACK, so a message
// published afterwards, on another topic, arrives after them: its arrival
// is the barrier.
func statusRetained(t testing.TB, br *mqtttest.Broker) []byte {
	t.Helper()
	c := mqtttest.Dial(t, br.URL())
	rec := c.Subscribe(prefix + "/status")
	probe := c.Subscribe("probe/barrier")
	c.Publish(t, "probe/barrier", 1, false, []byte("x"))
	probe.WaitFor(t, 1, wait)
	if m := rec.Messages(); len(m) > 0 {
		return m[0].Payload
	}
	return nil
}

// TestWebsockets: the link works over ws://.
func TestWebsockets(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t, mqtttest.WithWebsockets())
	b := startBox(t, t.TempDir())
	cloud := mqtttest.Dial(t, br.URL())
	events := cloud.Subscribe(prefix + "/events")
	startLink(t, b, br.WSURL())
	cloud.Subscribe(prefix+"/status").WaitUntil(t, isOnline(true), wait)
	b.addKeys(1, 3)
	checkStream(t, decodeEvents(t, events.WaitUntil(t, reaches(4), wait)), 1, 4)
}

func TestTLSConfigFiles(t *testing.T) {
	pki := mqtttest.NewPKI(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		ca, cert, key  string
		want           error
		roots, hasCert bool
	}{
		{name: "system roots", roots: false},
		{name: "ca only", ca: pki.CAFile, roots: true},
		{name: "mutual", ca: pki.CAFile, cert: pki.ClientCert, key: pki.ClientKey, roots: true, hasCert: true},
		{name: "no pem", ca: notPEM, want: ErrNoCertificate},
		{name: "missing ca", ca: filepath.Join(t.TempDir(), "nope.pem"), want: os.ErrNotExist},
		{name: "cert without key", cert: pki.ClientCert, want: ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := TLSConfig(tc.ca, tc.cert, tc.key)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (cfg.RootCAs != nil) != tc.roots || (len(cfg.Certificates) > 0) != tc.hasCert || cfg.MinVersion < tls.VersionTLS12 {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}
