package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

func frame(t Type, payload []byte) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	_ = WriteRaw(w, t, payload)
	_ = w.Flush()
	return b.Bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	in := Tasks{Tasks: []Task{{ID: 1, App: "a"}, {ID: 2, App: "b", Command: "echo"}}}
	if err := WriteFrame(w, TTasks, in); err != nil {
		t.Fatal(err)
	}
	_ = w.Flush()
	typ, p, err := ReadFrame(bufio.NewReader(&b), 0)
	if err != nil || typ != TTasks {
		t.Fatalf("%v %v", typ, err)
	}
	var out Tasks
	if err := Decode(typ, p, &out); err != nil || len(out.Tasks) != 2 || out.Tasks[1].Command != "echo" {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestBadFrames(t *testing.T) {
	cases := map[string][]byte{
		"oversized":        frame(TResults, make([]byte, 100)),
		"unknown type":     {0, 0, 0, 0, 77},
		"truncated header": {0, 0},
		"truncated body":   frame(TResults, []byte{1, 2, 3, 4})[:7],
	}
	for name, b := range cases {
		_, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), 10)
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want *FrameError", name, err)
		}
	}
	if _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(nil)), 10); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

func handshake(t *testing.T, serverSecret, clientSecret []byte, expect Expect, h Hello) (Hello, error, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	type res struct {
		h   Hello
		err error
	}
	ch := make(chan res, 1)
	go func() {
		h, err := ServerHandshake(bufio.NewReader(a), bufio.NewWriter(a), serverSecret, expect, Welcome{})
		ch <- res{h, err}
		a.Close()
	}()
	_, cerr := ClientHandshake(bufio.NewReader(b), bufio.NewWriter(b), clientSecret, h)
	r := <-ch
	return r.h, r.err, cerr
}

func TestHandshake(t *testing.T) {
	s := []byte("secret")
	h, serr, cerr := handshake(t, s, s, Expect{BuildID: "b", Digest: "d"}, Hello{BuildID: "b", Digest: "d", Manager: "m"})
	if serr != nil || cerr != nil || h.Manager != "m" {
		t.Fatalf("good handshake: %v %v %+v", serr, cerr, h)
	}
	_, serr, cerr = handshake(t, s, []byte("wrong"), Expect{}, Hello{})
	var re *RefusedError
	if !errors.As(serr, &re) || !errors.As(cerr, &re) || !strings.Contains(re.Reason, "authentication") {
		t.Fatalf("wrong secret: %v / %v", serr, cerr)
	}
	_, serr, cerr = handshake(t, s, s, Expect{Digest: "d"}, Hello{Digest: "x"})
	if !errors.As(serr, &re) || !errors.As(cerr, &re) || !strings.Contains(re.Reason, "digest") {
		t.Fatalf("digest mismatch: %v / %v", serr, cerr)
	}
	_, serr, cerr = handshake(t, s, s, Expect{Digest: "d", BuildID: "b"}, Hello{Generic: true})
	if serr != nil || cerr != nil {
		t.Fatalf("generic pools are not held to the build: %v / %v", serr, cerr)
	}
}

// FuzzReadFrame feeds arbitrary bytes to ReadFrame and decodes every frame
// it accepts as each message type: none of it may panic.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(TTasks, mustMarshal(Tasks{Tasks: []Task{{ID: 1, App: "x", Args: nil}}})))
	f.Add(frame(TResults, mustMarshal(Results{Results: []Result{{ID: 1, Err: &Error{Kind: ErrApp, Message: "m"}}}})))
	f.Add(frame(THello, mustMarshal(Hello{Manager: "m", Workers: 2})))
	f.Add(frame(THeartbeat, nil))
	f.Add(frame(TSubmit, mustMarshal(Submit{Items: []SubmitItem{{ID: 1, Payload: []byte{0xa0}}}})))
	f.Add(frame(TStatus, mustMarshal(Status{Managers: []ManagerState{{ID: "1"}}, Event: &ManagerEvent{Gone: true}})))
	f.Add([]byte{0, 0, 0, 3, 6, 0xa1, 0x61})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 8; i++ {
			typ, p, err := ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			if len(p) > 1<<16 {
				t.Fatalf("payload of %d bytes above the limit", len(p))
			}
			_ = typ.String()
			for _, v := range []any{&Challenge{}, &Hello{}, &Welcome{}, &Refuse{}, &Tasks{}, &Results{}, &Submit{}, &Deliver{}, &Status{}, &Control{}} {
				_ = Decode(typ, p, v)
			}
			var rs Results
			if Decode(typ, p, &rs) == nil {
				for _, x := range rs.Results {
					if x.Err != nil {
						_ = x.Err.ToError(x.ID, "app", 0, "host")
					}
				}
			}
		}
	})
}

func mustMarshal(v any) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := WriteFrame(w, THello, v); err != nil {
		panic(err)
	}
	_ = w.Flush()
	return b.Bytes()[5:]
}
