package mqttlink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// ErrNoCertificate is returned by TLSConfig when the CA file holds no PEM
// certificate.
var ErrNoCertificate = errors.New("mqttlink: no PEM certificate in the CA file")

// TLSConfig builds the TLS configuration of an ssl:// broker from PEM
// files: caFile is the certificate authority that signed the broker's
// certificate ("" trusts the system's), certFile and keyFile the box's own
// certificate and key for mutual TLS (both or neither).
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqttlink: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s", ErrNoCertificate, caFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("mqttlink: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, fmt.Errorf("%w: tls: cert_file and key_file go together", ErrInvalidConfig)
	}
	return cfg, nil
}

// describeConnectError names the kind of a connection failure and the level
// to log it at: a certificate or TLS problem, or a refusal by the broker,
// needs a person and is an error; an unreachable broker is a warning.
// overTLS says the broker URL is a TLS one.
func describeConnectError(err error, overTLS bool) (string, slog.Level) {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	switch {
	case err == nil:
		return "mqtt connection failed", slog.LevelWarn
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return "mqtt broker certificate refused (TLS)", slog.LevelError
	case errors.As(err, &record), errors.As(err, &alert), isRemoteTLSAlert(err):
		return "mqtt TLS handshake failed", slog.LevelError
	case overTLS && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		// With TLS 1.3 the broker checks the client certificate after the
		// box's side of the handshake is done, then closes the connection;
		// the alert saying why is often lost in the reset.
		return "mqtt broker closed the connection during TLS setup (client certificate refused?)", slog.LevelError
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword), errors.Is(err, packets.ErrorRefusedNotAuthorised),
		errors.Is(err, packets.ErrorRefusedIDRejected), errors.Is(err, packets.ErrorRefusedBadProtocolVersion):
		return "mqtt broker refused the connection", slog.LevelError
	}
	return "mqtt broker unreachable", slog.LevelWarn
}

// isRemoteTLSAlert reports an alert the peer sent during the handshake, such
// as a broker refusing the box's client certificate. crypto/tls reports it
// as a "remote error" whose alert type is not exported.
func isRemoteTLSAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && strings.HasPrefix(errText(op.Err), "tls:")
}
