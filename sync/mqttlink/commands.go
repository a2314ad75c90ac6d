package mqttlink

import (
	"context"

	"smartboxd/contract"
)

// serveCommands executes received commands one at a time, in arrival
// order, publishes their replies and acknowledges them to the broker. It
// returns when ctx ends; a command it did not finish stays unacknowledged,
// so the broker delivers it again in the next session.
func (l *Link) serveCommands(ctx context.Context) {
	var rq replyQueue
	for {
		l.flushReplies(&rq)
		m, ok := l.cmds.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-l.cmds.sig:
			case <-l.cmdWake:
			}
			continue
		}
		reply, err := l.handle(ctx, m.Payload())
		if err != nil {
			if ctx.Err() == nil {
				l.log.Error("mqtt command not executed; it stays queued at the broker", "err", err)
				<-ctx.Done()
			}
			return
		}
		rq.push(reply.Encode())
		l.flushReplies(&rq)
		m.Ack()
	}
}

// handle turns one payload into its reply. An error means the box did not
// run the command (it is stopping) and nothing should be answered.
func (l *Link) handle(ctx context.Context, payload []byte) (contract.Reply, error) {
	reply, err := l.box.Receive(ctx, payload)
	if err != nil {
		return contract.Reply{}, err
	}
	if reply.OK {
		l.log.Info("mqtt command done", "id", reply.ID)
	} else if reply.Error != nil {
		l.log.Info("mqtt command refused", "id", reply.ID, "bytes", len(payload), "code", reply.Error.Code)
	}
	return reply, nil
}

// flushReplies publishes the waiting replies while the connection is open.
// A reply published just as the connection drops is lost with it; the
// broker delivers the unacknowledged command again and the box answers it
// from its stored replies.
func (l *Link) flushReplies(rq *replyQueue) {
	if rq.dropped > 0 {
		l.log.Warn("mqtt replies dropped while offline (the box keeps them for a resent command)", "count", rq.dropped)
		rq.dropped = 0
	}
	for len(rq.q) > 0 && l.open() {
		l.publish(l.topics.Reply, false, rq.q[0])
		rq.q[0] = nil
		rq.q = rq.q[1:]
	}
	l.mu.Lock()
	l.stats.Replies = len(rq.q)
	l.mu.Unlock()
}
