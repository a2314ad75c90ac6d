package mqttlink

import (
	"sync/atomic"
	"testing"

	"smartboxd/contract"
	"smartboxd/internal/mqtttest"
)

// TestStatusFirmware: the status carries the firmware member the box
// gives, published again on StatusChanged; Stats counts the cloud's acks,
// which is what a trial waits for.
func TestStatusFirmware(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	var committed atomic.Bool
	fw := func() contract.Firmware {
		if committed.Load() {
			return contract.Firmware{Committed: "1.3.0"}
		}
		trial := "1.3.0"
		return contract.Firmware{Committed: "1.2.0", Trial: &trial}
	}
	l := startLink(t, b, br.URL(), func(c *Config) { c.Firmware = fw })
	cloud := mqtttest.Dial(t, br.URL())
	status := cloud.Subscribe(prefix + "/status")
	firmwareIs := func(committed string, trial any) func([]mqtttest.Message) bool {
		return func(msgs []mqtttest.Message) bool {
			for _, m := range msgs {
				s := statusOf(t, m)
				f, _ := s["firmware"].(map[string]any)
				if s["online"] == true && f != nil && f["committed"] == committed && f["trial"] == trial {
					return true
				}
			}
			return false
		}
	}
	status.WaitUntil(t, firmwareIs("1.2.0", "1.3.0"), wait)
	if got := l.Stats().Acks; got != 0 {
		t.Fatalf("Acks %d before any ack", got)
	}
	cloud.Publish(t, prefix+"/events/ack", 1, false, []byte(`{"seq":1}`))
	eventually(t, "the ack counted", func() bool { return l.Stats().Acks == 1 })
	cloud.Publish(t, prefix+"/events/ack", 1, false, []byte(`not an ack`))
	cloud.Publish(t, prefix+"/events/ack", 1, false, []byte(`{"seq":1}`))
	eventually(t, "the second valid ack counted", func() bool { return l.Stats().Acks == 2 })

	committed.Store(true)
	l.StatusChanged()
	status.WaitUntil(t, firmwareIs("1.3.0", nil), wait)
}
