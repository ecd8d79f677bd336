package certs_test

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/parsl-go/parsl/internal/certs"
)

func TestGenerateModesAndHandshake(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certificates")
	b, err := certs.Generate(dir, []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", st.Mode().Perm())
	}
	for _, f := range []string{b.CAFile, b.CertFile, b.KeyFile} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", b.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.WriteString(c, "ok")
			c.Close()
		}
	}()
	cc, err := certs.ClientConfig(b.CAFile, certs.ServerName)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), cc)
	if err != nil {
		t.Fatalf("a client trusting the run's CA must connect: %v", err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	<-done
	if string(got) != "ok" {
		t.Fatalf("read %q", got)
	}

	// Another run's CA must not be trusted.
	other, err := certs.Generate(filepath.Join(t.TempDir(), "other"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	oc, _ := certs.ClientConfig(other.CAFile, certs.ServerName)
	done2 := make(chan struct{})
	go func() {
		defer close(done2)
		if c, err := ln.Accept(); err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	if c, err := tls.Dial("tcp", ln.Addr().String(), oc); err == nil {
		c.Close()
		t.Fatal("a client trusting another CA connected")
	}
	<-done2
}
