package mqttlink

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/internal/mqtttest"
)

// cloudCmd plays the cloud's command side: it publishes commands and
// records replies.
type cloudCmd struct {
	c       *mqtttest.Client
	replies *mqtttest.Recorder
}

func newCloudCmd(t testing.TB, url string) *cloudCmd {
	c := mqtttest.Dial(t, url)
	return &cloudCmd{c: c, replies: c.Subscribe(prefix + "/cmd/reply")}
}

// send publishes a command and waits for the next reply.
func (cc *cloudCmd) send(t testing.TB, payload []byte) reply {
	t.Helper()
	n := cc.replies.Len()
	cc.c.Publish(t, prefix+"/cmd", 1, false, payload)
	return decodeReply(t, cc.replies.WaitFor(t, n+1, wait)[n])
}

// TestCommandsWhileDown: commands published while the link is away are
// queued by the broker in the link's persistent session and applied once
// the link is back.
func TestCommandsWhileDown(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	cc := newCloudCmd(t, br.URL())
	l := startLink(t, b, br.URL())
	l.waitSubscribed(1)
	l.stop()

	// The broker keeps the stopped link's session and subscriptions.
	cc.c.Publish(t, prefix+"/cmd", 1, false, []byte(`{"id":"open-1","type":"bin.open","data":{"bin":2}}`))
	cc.c.Publish(t, prefix+"/cmd", 1, false, []byte(`{"id":"open-2","type":"bin.open","data":{"bin":3}}`))
	if got := b.locks.pulses(); len(got) != 0 {
		t.Fatalf("pulsed %v while the link was down", got)
	}

	startLink(t, b, br.URL())
	msgs := cc.replies.WaitFor(t, 2, wait)
	for i, id := range []string{"open-1", "open-2"} {
		r := decodeReply(t, msgs[i])
		if r.ID != id || !r.OK {
			t.Errorf("reply %d: %+v", i, r)
		}
	}
	eventually(t, "bins pulsed", func() bool { return slices.Equal(b.locks.pulses(), []int{2, 3}) })
}

// TestMalformedCommands: every payload that is not a command the box can
// run gets its error code, nothing happens, and the link stays up.
func TestMalformedCommands(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	cc := newCloudCmd(t, br.URL())
	l := startLink(t, b, br.URL())
	l.waitSubscribed(1)
	seqBefore := b.outbox().LastSeq

	big := fmt.Appendf(nil, `{"id":"big","type":"bin.open","data":{"bin":1,"pad":"%s"}}`, strings.Repeat("x", 1<<20))
	for _, tc := range []struct {
		name, payload, id, code string
	}{
		{"not json", `this is not json`, "", "cmd.invalid"},
		{"wrong types", `{"id":"x","type":"bin.open","data":{"bin":"one"}}`, "x", "cmd.invalid"},
		{"too large", string(big), "big", "cmd.invalid"},
		{"unknown type", `{"id":"u","type":"bin.explode","data":{}}`, "u", "cmd.unknown"},
		{"expired", `{"id":"e","type":"bin.open","data":{"bin":1},"expires_at":"2001-01-01T00:00:00Z"}`, "e", "cmd.expired"},
		{"no id", `{"type":"bin.open","data":{"bin":1}}`, "", "cmd.invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cc.send(t, []byte(tc.payload))
			if r.OK || r.Error == nil || r.Error.Code != tc.code || r.ID != tc.id {
				t.Errorf("reply %+v (error %+v), want id %q code %s", r, r.Error, tc.id, tc.code)
			}
		})
	}
	if got := b.locks.pulses(); len(got) != 0 {
		t.Errorf("a refused command pulsed %v", got)
	}
	if s := b.outbox().LastSeq; s != seqBefore {
		t.Errorf("refused commands wrote events: last seq %d, was %d", s, seqBefore)
	}
	if r := cc.send(t, []byte(`{"id":"after","type":"bin.open","data":{"bin":1}}`)); !r.OK {
		t.Errorf("a good command after the bad ones: %+v", r)
	}
	if !l.Stats().Connected {
		t.Errorf("the link went down")
	}
	// Logs name commands by id and type, never by their payload.
	if logs := l.logs.String(); strings.Contains(logs, "xxxxxxxx") || strings.Contains(logs, `"bin":"one"`) {
		t.Errorf("a command payload reached the log")
	}
}

// TestDuplicateCommand: the same command id twice gets the same reply and
// has one effect.
func TestDuplicateCommand(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	cc := newCloudCmd(t, br.URL())
	startLink(t, b, br.URL()).waitSubscribed(1)
	cmd := []byte(`{"id":"same","type":"bin.open","data":{"bin":2}}`)
	n := cc.replies.Len()
	cc.c.Publish(t, prefix+"/cmd", 1, false, cmd)
	cc.c.Publish(t, prefix+"/cmd", 1, false, cmd)
	msgs := cc.replies.WaitFor(t, n+2, wait)
	one, two := msgs[n].Payload, msgs[n+1].Payload
	if string(one) != string(two) {
		t.Errorf("replies differ:\n%s\n%s", one, two)
	}
	if r := decodeReply(t, msgs[n]); !r.OK || r.ID != "same" {
		t.Errorf("reply %+v", r)
	}
	if got := b.locks.pulses(); !slices.Equal(got, []int{2}) {
		t.Errorf("pulses %v, want one of bin 2", got)
	}
}

// TestLargeSnapshot: a sync.snapshot larger than MaxPayload is taken.
func TestLargeSnapshot(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir(), func(c *device.Config) { c.Limits.MaxSnapshotPayload = 1 << 20 })
	cc := newCloudCmd(t, br.URL())
	startLink(t, b, br.URL()).waitSubscribed(1)

	const n = 5000
	codes := make([]any, n)
	for i := range n {
		codes[i] = map[string]any{"access_code_id": fmt.Sprintf("ac-%05d", i), "code": fmt.Sprintf("%08d", 10_000_000+i*7),
			"name": "guest", "type": "ongoing", "key_id": "k", "action": "dropoff"}
	}
	payload, _ := json.Marshal(map[string]any{"id": "snap", "type": "sync.snapshot", "data": map[string]any{
		"version": "v1", "keys": []any{map[string]any{"key_id": "k", "name": "k"}}, "access_codes": codes}})
	if len(payload) <= contract.DefaultMaxPayload || len(payload) > 1<<20 {
		t.Fatalf("the snapshot is only %d bytes", len(payload))
	}
	r := cc.send(t, payload)
	if !r.OK || r.ID != "snap" {
		t.Fatalf("snapshot reply %+v %+v", r, r.Error)
	}
	st, err := b.box.State()
	if err != nil || st.AccessCodes != n {
		t.Errorf("access codes %d (%v), want %d", st.AccessCodes, err, n)
	}
	// A snapshot beyond SnapshotMaxPayload is refused like any large payload.
	if r := cc.send(t, fmt.Appendf(nil, `{"id":"huge","type":"sync.snapshot","pad":"%s"}`, strings.Repeat("y", 1<<20))); r.OK || r.Error.Code != "cmd.invalid" || r.ID != "huge" {
		t.Errorf("oversized snapshot reply %+v", r)
	}
}

// TestReplyAfterReconnect: a reply ready while the link is down waits and
// is published once the link is back; the command has one effect.
func TestReplyAfterReconnect(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	gb := &gatedBox{Box: b.box, entered: make(chan string, 10), gate: make(chan struct{})}
	p := startProxy(t, br.Addr())
	cc := newCloudCmd(t, br.URL())
	l := startLinkFor(t, gb, b.db, p.URL())
	l.waitSubscribed(1)

	cc.c.Publish(t, prefix+"/cmd", 1, false, []byte(`{"id":"late","type":"bin.open","data":{"bin":1}}`))
	select {
	case id := <-gb.entered:
		if id != "late" {
			t.Fatalf("executing %q", id)
		}
	case <-time.After(wait):
		t.Fatal("the command did not reach the box")
	}
	p.Cut()
	eventually(t, "link sees the loss", func() bool { return !l.Stats().Connected })
	close(gb.gate) // the reply is ready while the link is down
	eventually(t, "reply waiting", func() bool { return l.Stats().Replies == 1 })
	p.Reopen()

	// The PUBACK of the command was lost with the connection, so the
	// broker delivers it again: the first reply is the one that waited,
	// the second the box's stored reply to the resent command.
	msgs := cc.replies.WaitFor(t, 2, wait)
	r := decodeReply(t, msgs[0])
	if !r.OK || r.ID != "late" {
		t.Errorf("reply %+v", r)
	}
	if string(msgs[1].Payload) != string(msgs[0].Payload) {
		t.Errorf("replies differ:\n%s\n%s", msgs[0].Payload, msgs[1].Payload)
	}
	if got := b.locks.pulses(); !slices.Equal(got, []int{1}) {
		t.Errorf("pulses %v", got)
	}
	eventually(t, "no reply waiting", func() bool { return l.Stats().Replies == 0 })
}
