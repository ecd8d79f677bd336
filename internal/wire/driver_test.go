package wire

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestHandshakeRole checks that a driver is accepted only at the driver
// address and a pool only at the pool address.
func TestHandshakeRole(t *testing.T) {
	s := []byte("secret")
	if _, serr, cerr := handshake(t, s, s, Expect{Role: RoleDriver}, Hello{Role: RoleDriver}); serr != nil || cerr != nil {
		t.Fatalf("driver at the driver address: %v / %v", serr, cerr)
	}
	var re *RefusedError
	_, serr, cerr := handshake(t, s, s, Expect{Role: RoleDriver}, Hello{Manager: "m"})
	if !errors.As(serr, &re) || !errors.As(cerr, &re) || !strings.Contains(re.Reason, "pool address") {
		t.Fatalf("pool at the driver address: %v / %v", serr, cerr)
	}
	_, serr, cerr = handshake(t, s, s, Expect{BuildID: "b"}, Hello{Role: RoleDriver})
	if !errors.As(serr, &re) || !errors.As(cerr, &re) || !strings.Contains(re.Reason, "driver address") {
		t.Fatalf("driver at the pool address: %v / %v", serr, cerr)
	}
}

func TestInterchangeConfigFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ix.json")
	if err := WriteInterchangeConfig(p, InterchangeConfig{SecretFile: "s", CertFile: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInterchangeConfig(p); err == nil || !strings.Contains(err.Error(), "key_file") {
		t.Fatalf("cert without key: %v", err)
	}
	a := Addresses{Pools: []string{"h:1"}, Driver: "h:2", PID: 7}
	ap := filepath.Join(dir, "addresses.json")
	if err := WriteAddresses(ap, a); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadAddresses(ap); err != nil || got.Driver != "h:2" || got.PID != 7 || len(got.Pools) != 1 {
		t.Fatalf("ReadAddresses = %+v, %v", got, err)
	}
}
