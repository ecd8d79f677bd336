package wire

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/parsl-go/parsl/internal/codec"
)

// RefusedError is a handshake the other side refused; Reason says why.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "parsl: worker pool refused: " + e.Reason }

// Expect is what an interchange requires of a pool.
type Expect struct {
	BuildID string
	Digest  string
	// Role is the Hello.Role accepted: "" on the pool address,
	// RoleDriver on a standalone interchange's driver address.
	Role string
}

// Nonce returns 32 random bytes.
func Nonce() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// helloMAC binds the pool's identity to the interchange's nonce, so a
// recorded hello cannot be replayed to another interchange or run.
func helloMAC(secret, nonce []byte, h Hello) []byte {
	h.MAC = nil
	body, _ := codec.Marshal(h) // Hello has only encodable fields
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("parsl-hello\x00"))
	m.Write(nonce)
	m.Write(body)
	return m.Sum(nil)
}

func welcomeMAC(secret, clientNonce []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("parsl-welcome\x00"))
	m.Write(clientNonce)
	return m.Sum(nil)
}

// ServerHandshake runs the interchange's side: challenge, check the hello,
// welcome or refuse. The caller sets deadlines on the connection. A refusal
// is returned as *RefusedError after it has been sent.
func ServerHandshake(r *bufio.Reader, w *bufio.Writer, secret []byte, expect Expect, welcome Welcome) (Hello, error) {
	nonce := Nonce()
	if err := WriteFrame(w, TChallenge, Challenge{Protocol: ProtocolVersion, Nonce: nonce}); err != nil {
		return Hello{}, err
	}
	if err := w.Flush(); err != nil {
		return Hello{}, err
	}
	t, p, err := ReadFrame(r, 64<<10)
	if err != nil {
		return Hello{}, err
	}
	if t != THello {
		return Hello{}, &FrameError{Reason: fmt.Sprintf("expected hello, got %s", t)}
	}
	var h Hello
	if err := Decode(t, p, &h); err != nil {
		return Hello{}, err
	}
	if !hmac.Equal(h.MAC, helloMAC(secret, nonce, h)) {
		// Say nothing useful to a peer that does not know the secret.
		refuse(w, "authentication failed")
		return h, &RefusedError{Reason: "authentication failed: the pool does not know this run's secret"}
	}
	if reason := mismatch(h, expect); reason != "" {
		refuse(w, reason)
		return h, &RefusedError{Reason: reason}
	}
	welcome.MAC = welcomeMAC(secret, h.ClientNonce)
	if err := WriteFrame(w, TWelcome, welcome); err != nil {
		return h, err
	}
	return h, w.Flush()
}

func refuse(w *bufio.Writer, reason string) {
	_ = WriteFrame(w, TRefuse, Refuse{Reason: reason})
	_ = w.Flush()
}

func mismatch(h Hello, e Expect) string {
	var diffs []string
	if h.Protocol != ProtocolVersion {
		diffs = append(diffs, fmt.Sprintf("protocol version %d, the interchange speaks %d", h.Protocol, ProtocolVersion))
	}
	if !h.Generic {
		if e.BuildID != "" && h.BuildID != e.BuildID {
			diffs = append(diffs, fmt.Sprintf("build %s, the driver is build %s", h.BuildID, e.BuildID))
		}
		if e.Digest != "" && h.Digest != e.Digest {
			diffs = append(diffs, fmt.Sprintf("app registry digest %.12s…, the driver's is %.12s…", h.Digest, e.Digest))
		}
	}
	if h.Role != e.Role {
		// Checked first and alone: a client at the wrong address needs
		// only that said.
		if e.Role == RoleDriver {
			return fmt.Sprintf("pool %s on %s connected to the interchange's driver address; pools must use its pool address", h.Manager, h.Hostname)
		}
		return fmt.Sprintf("a client with role %q connected to the interchange's pool address; the driver must use its driver address", h.Role)
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprintf("pool %s on %s (block %s) has %s; start pools from the same executable as the driver",
		h.Manager, h.Hostname, h.BlockID, strings.Join(diffs, " and "))
}

// ClientHandshake runs the pool's side. It returns *RefusedError when the
// interchange refuses, and an error when the interchange cannot prove it
// knows the secret.
func ClientHandshake(r *bufio.Reader, w *bufio.Writer, secret []byte, h Hello) (Welcome, error) {
	t, p, err := ReadFrame(r, 64<<10)
	if err != nil {
		return Welcome{}, err
	}
	if t != TChallenge {
		return Welcome{}, &FrameError{Reason: fmt.Sprintf("expected challenge, got %s", t)}
	}
	var c Challenge
	if err := Decode(t, p, &c); err != nil {
		return Welcome{}, err
	}
	h.Protocol = ProtocolVersion
	h.ClientNonce = Nonce()
	h.MAC = helloMAC(secret, c.Nonce, h)
	if err := WriteFrame(w, THello, h); err != nil {
		return Welcome{}, err
	}
	if err := w.Flush(); err != nil {
		return Welcome{}, err
	}
	t, p, err = ReadFrame(r, 64<<10)
	if err != nil {
		return Welcome{}, err
	}
	switch t {
	case TRefuse:
		var rf Refuse
		if err := Decode(t, p, &rf); err != nil {
			return Welcome{}, err
		}
		return Welcome{}, &RefusedError{Reason: rf.Reason}
	case TWelcome:
		var wl Welcome
		if err := Decode(t, p, &wl); err != nil {
			return Welcome{}, err
		}
		if !hmac.Equal(wl.MAC, welcomeMAC(secret, h.ClientNonce)) {
			return Welcome{}, fmt.Errorf("parsl: the interchange could not prove it knows the run's secret; refusing to take tasks from it")
		}
		return wl, nil
	}
	return Welcome{}, &FrameError{Reason: fmt.Sprintf("expected welcome or refuse, got %s", t)}
}
