package console

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
	"smartboxd/device"
)

// fakeBox is a box in memory: two bins, no keys, every login as the PIN says.
type fakeBox struct {
	mu       sync.Mutex
	audits   []string
	opened   []int
	auditErr error
	keysErr  error
	storeErr string // the state's store error
}

var _ Box = (*fakeBox)(nil)

func (f *fakeBox) State() (contract.State, error) {
	return contract.State{Bins: []contract.BinState{
		{ID: 1, State: "empty", Lock: "locked", Door: "unknown"},
		{ID: 2, State: "empty", Lock: "locked", Door: "unknown"},
	}, Clock: contract.ClockState{Synced: true}, Store: contract.StoreState{OK: f.storeErr == "", Error: f.storeErr}}, nil
}

func (f *fakeBox) OpenBin(ctx context.Context, bin int, reason string) error {
	if bin != 1 && bin != 2 {
		return &contract.Error{Code: contract.CodeBinNotFound, Message: "no bin " + strconv.Itoa(bin)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, bin)
	return nil
}

func (f *fakeBox) ConsoleLogin(ctx context.Context, pinOK bool) (device.LoginResult, error) {
	return device.LoginResult{OK: pinOK}, nil
}

func (f *fakeBox) ClearLockout(ctx context.Context) (contract.LockoutCleared, error) {
	return contract.LockoutCleared{By: contract.ClearedByConsole}, nil
}

func (f *fakeBox) Audit(ctx context.Context, command string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.auditErr != nil {
		return f.auditErr
	}
	f.audits = append(f.audits, command)
	return nil
}

func (f *fakeBox) Keys() ([]contract.KeyView, error) { return nil, f.keysErr }

func (f *fakeBox) AccessCodes(max int) ([]contract.AccessCodeView, int, error) { return nil, 0, nil }

func (f *fakeBox) FobPresent(bin int, serial string) {}
func (f *fakeBox) FobAbsent(bin int)                 {}

// serveBytes runs one session over in on a fake box and returns what the
// console wrote. The session must end at the end of in, without error.
func serveBytes(t testing.TB, box Box, in string) string {
	t.Helper()
	con, err := New(Config{
		Box: box, PINHash: testHash, BoxID: "box-fuzz", Version: "test",
		Sim:   &Sim{Press: func(rune) {}, Door: func(int, bool) error { return nil }},
		Clock: clockwork.NewFakeClockAt(t0),
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(in), &out}
	if err := con.Serve(context.Background(), rw); err != nil {
		t.Fatalf("serve: %v", err)
	}
	return out.String()
}

var fuzzPrompt = regexp.MustCompile(`smartbox> |smartbox\(box-fuzz\)# `)

// FuzzLine feeds arbitrary bytes to a session: it never fails, every answer
// starts on a new line and ends with OK or ERR, and every line the editor
// finishes is printable ASCII within the limit.
func FuzzLine(f *testing.F) {
	for _, s := range []string{
		"help\r\n",
		"login " + testPIN + "\r\nstatus\r\nbins\r\nopen 1\r\nopen 9\r\nkeys\r\ncodes\r\nevents 3\r\nsync\r\nreaders\r\nlogout\r\n",
		"login " + testPIN + "\rsim key 12#\rsim fob 1 0a1b\rsim nofob 1\rsim door 2 open\rsim fly\r",
		"login " + testPIN + "\n\x00\x01\xff\xfe\r" + strings.Repeat("z", 300) + "\r\n",
		"stat\x08us\r\x00open 1\x03\x15\t\r\n\n\r",
		"\x1b[A\x1b[Bopen 1\r",
		"login 1\rlogin\rlogin a b\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var e editor
		for _, b := range in {
			l, ok := e.feed(b)
			if !ok {
				continue
			}
			if len(l.text) > MaxLine {
				t.Fatalf("a line of %d bytes", len(l.text))
			}
			for i := 0; i < len(l.text); i++ {
				if c := l.text[i]; c < 0x20 || c > 0x7e {
					t.Fatalf("byte %#x in line %q", c, l.text)
				}
			}
		}

		out := serveBytes(t, &fakeBox{}, string(in))
		parts := fuzzPrompt.Split(out, -1)
		if !strings.HasPrefix(parts[0], "SmartBox box-fuzz console") {
			t.Fatalf("greeting %q", parts[0])
		}
		for _, p := range parts[1:] {
			if p == "" || p == "^C\r\n" {
				continue // the end, or an abandoned line
			}
			body, ok := strings.CutPrefix(p, "\r\n")
			if !ok {
				t.Fatalf("an answer not on a new line: %q", p)
			}
			if body == "" {
				continue // an empty line
			}
			if !strings.HasSuffix(body, "\r\n") {
				t.Fatalf("an answer without a line end: %q", body)
			}
			lines := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
			if last := lines[len(lines)-1]; last != "OK" && !strings.HasPrefix(last, "ERR ") {
				t.Fatalf("an answer ending with %q: %q", last, body)
			}
		}
	})
}
