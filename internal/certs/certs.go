// Package certs makes the per-run TLS material of the high-throughput
// executor: a fresh CA and a server certificate it signs, for the
// interchange. Pools trust only this run's CA, so a pool cannot be talked
// into taking tasks from another interchange, and the CA key never touches
// the disk: nothing else can ever be signed by it.
package certs

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
	"time"
)

// ServerName is the DNS name in every interchange certificate; pools
// verify it (PoolConfig.ServerName) whatever address they dialled.
const ServerName = "parsl-interchange"

// Bundle is the generated material.
type Bundle struct {
	// CAFile is the PEM of the run's CA certificate, for pools.
	CAFile string
	// CertFile and KeyFile are the interchange's certificate and key.
	CertFile, KeyFile string
	// Server is ready to use in the interchange's tls.Config.
	Server tls.Certificate
}

// Generate writes ca.pem, server.pem and server-key.pem into dir (created
// with mode 0700; files are 0600). ips are added to the certificate's
// addresses besides ServerName. validFor bounds the certificates' life;
// 0 means 30 days.
func Generate(dir string, ips []net.IP, validFor time.Duration) (*Bundle, error) {
	if validFor <= 0 {
		validFor = 30 * 24 * time.Hour
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: creating %s: %w", dir, err)
	}
	// MkdirAll keeps the mode of an existing directory; the key inside must
	// not be readable by others either way.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: securing %s: %w", dir, err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "parsl run CA"},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew between nodes
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("certs: signing CA: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: ServerName},
		DNSNames:     []string{ServerName},
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("certs: signing server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: encoding server key: %w", err)
	}
	b := &Bundle{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	for _, f := range []struct {
		path string
		data []byte
	}{
		{b.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})},
		{b.CertFile, certPEM},
		{b.KeyFile, keyPEM},
	} {
		if err := writeFile(f.path, f.data); err != nil {
			return nil, err
		}
	}
	b.Server, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: loading the generated pair: %w", err)
	}
	return b, nil
}

// writeFile writes data with mode 0600, also when path already exists
// with a wider mode.
func writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("certs: securing %s: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// ServerConfig returns the interchange's TLS configuration for b.
func (b *Bundle) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{b.Server}, MinVersion: tls.VersionTLS13}
}

// ClientConfig returns a pool's TLS configuration trusting only the CA in
// caFile and expecting serverName.
func ClientConfig(caFile, serverName string) (*tls.Config, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("certs: reading the run's CA %s: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", caFile)
	}
	if serverName == "" {
		serverName = ServerName
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS13}, nil
}
