package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throw-away certificate authority with one server and one client
// certificate, all ECDSA P-256, written as PEM files for mosquitto and for
// the code under test.
type PKI struct {
	// CAFile holds the CA certificate.
	CAFile string
	// ServerCert and ServerKey are valid for 127.0.0.1, ::1 and localhost.
	ServerCert string
	ServerKey  string
	// ClientCert and ClientKey identify a client (common name
	// "mqtttest-client") to a broker that requires certificates.
	ClientCert string
	ClientKey  string
}

// NewPKI makes a fresh CA, a server and a client certificate in a temporary
// directory. Every call makes an unrelated CA.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p, err := newPKI(t.TempDir())
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	return p
}

// OtherCA returns a PKI whose CA is unrelated to p's: its client certificate
// is refused by a broker started with WithTLS(p), and its CA does not trust
// p's server certificate.
func (p *PKI) OtherCA(t testing.TB) *PKI {
	t.Helper()
	return NewPKI(t)
}

// ClientTLSConfig returns a TLS configuration that trusts p's CA and
// presents p's client certificate.
func (p *PKI) ClientTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	cfg, err := p.clientTLSConfig()
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	return cfg
}

func (p *PKI) clientTLSConfig() (*tls.Config, error) {
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		return nil, fmt.Errorf("mqtttest: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("mqtttest: no certificate in %s", p.CAFile)
	}
	cert, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("mqtttest: load client certificate: %w", err)
	}
	return &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// issued is a certificate together with its key.
type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newPKI(dir string) (*PKI, error) {
	// Certificates are valid from an hour ago, in case clocks differ a
	// little, for a week: longer than any test run.
	notBefore := time.Now().Add(-time.Hour)
	notAfter := notBefore.Add(7 * 24 * time.Hour)

	ca, err := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "mqtttest CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil)
	if err != nil {
		return nil, err
	}
	server, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, ca)
	if err != nil {
		return nil, err
	}
	client, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "mqtttest-client"},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return nil, err
	}

	p := &PKI{
		CAFile:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	for _, w := range []struct {
		path string
		cert *x509.Certificate
		key  *ecdsa.PrivateKey
	}{
		{p.CAFile, ca.cert, nil},
		{p.ServerCert, server.cert, nil},
		{p.ServerKey, nil, server.key},
		{p.ClientCert, client.cert, nil},
		{p.ClientKey, nil, client.key},
	} {
		if err := writePEM(w.path, w.cert, w.key); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// issue signs tmpl with parent, or makes it self-signed when parent is nil.
func issue(tmpl *x509.Certificate, parent *issued) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mqtttest: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("mqtttest: generate serial: %w", err)
	}
	tmpl.SerialNumber = serial
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("mqtttest: create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mqtttest: parse certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return &issued{cert: cert, key: key}, nil
}

// writePEM writes either a certificate or a PKCS #8 private key.
func writePEM(path string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	var block *pem.Block
	if cert != nil {
		block = &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("mqtttest: marshal key: %w", err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return fmt.Errorf("mqtttest: write %s: %w", path, err)
	}
	return nil
}
