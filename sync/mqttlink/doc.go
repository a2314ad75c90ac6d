// Package mqttlink links a box to the cloud over MQTT: the outbox drain,
// commands and replies, status and state.
//
// A Link keeps one persistent MQTT session (clean session off, a fixed
// client id) with the broker, under the topics P = <prefix>/<box id>:
//
//	P/status      up    retained  {"online":true|false,"version","boot_id","session","at"}
//	P/state       up    retained  the box's state document
//	P/events      up              one outbox event, its stored JSON verbatim
//	P/events/ack  down            {"seq":N}: the cloud stored every seq <= N
//	P/cmd         down            one command
//	P/cmd/reply   up              the reply to one command
//
// Everything is QoS 1. The box starts and works offline: Run connects in
// the background, retries until the broker answers and reconnects after a
// loss, and never fails because the broker is away.
//
// # Connecting
//
// Config.Brokers lists the brokers, in order of preference. The link
// tries them in turn until one answers and, when the connection is lost,
// moves on to the next one (the last wraps around to the first), always
// with the same client id and clean session off: a broker cluster keeps
// the session, and a broker that does not at least gets the outbox again.
// Every attempt waits first, full jitter: a random time from zero up to
// ReconnectMin doubled once per failed attempt in a row, at most
// ReconnectMax; a connection that was made resets the doubling. The first
// attempt after Run starts waits up to ReconnectMin, so that boxes powered
// on together spread out, and so does the first after a lost connection.
// ReconnectMin is 1 s by default (§9); a fleet sharing a broker raises it
// (mqtt.reconnect_min_s), since the boxes a broker restart or a node's loss
// cut off at one instant come back over about that long, whatever the
// broker's downtime: each box's own blip then costs it up to that long too.
// paho's own reconnect is off: its backoff has no jitter, and each attempt
// needs a new last will.
//
// Every connection has a session number, one above the last, kept across
// restarts by the SessionCounter (the store). The number is taken, and
// stored, before the attempt: the last will registered with the broker
// carries it, so a cloud can ignore a will older than the latest
// "online":true. A failed attempt leaves its number to the next one.
//
// On every connect the Link subscribes to P/cmd and P/events/ack, publishes
// a retained "online":true status and the state, and publishes the outbox
// again from its first unacked event. The last will, registered with the
// broker, sets a retained "online":false when the link dies unannounced; a
// planned stop (Run's context canceled) publishes "online":false itself,
// waits up to two seconds for the broker to take it, and disconnects.
//
// Every received message reaches paho's default handler, which routes it by
// topic: with a persistent session the broker delivers queued commands as
// soon as the connection is up, before any subscription call returns.
//
// # Events
//
// Events are published in seq order, at most InFlight published and not yet
// acknowledged at once. With Ack "cloud" an event leaves the outbox when a
// P/events/ack covers it; acks beyond the last seq published are clamped to
// it and malformed acks are logged and ignored. With Ack "broker" an event
// leaves the outbox when the broker's PUBACK for it arrives. Unacked events
// are published again, with the same id and seq, after every reconnect and
// whenever no ack arrived for AckTimeout while connected (the wait doubles
// on each such rewind without progress, up to eight times AckTimeout). The
// cloud may therefore see an event more than once; it keeps the first copy
// of each seq.
//
// # Commands
//
// Commands are executed one at a time, in arrival order, on a goroutine of
// the Link, never on paho's. A command is acknowledged to the broker
// (PUBACK) only once the box has executed it and stored its reply, so a
// command received just before a crash is delivered again after the
// restart, and the broker's in-flight window bounds how many commands wait
// in memory. The box answers a command id it has seen before with the
// stored reply, so a command delivered twice has one effect.
//
// The link is transport only: each command payload is read once by
// contract.ParseCommand, with the limits of MaxPayload (SnapshotMaxPayload
// for a sync.snapshot), and a payload that is not a valid command is
// answered with the contract's cmd.invalid. A reply that cannot be published
// because the link is down waits in memory (the newest MaxReplies) and is
// published after the reconnect. Logs name a command by id and type only:
// a command can carry an access code.
//
// # Caveats
//
//   - paho's in-flight store lives in memory and is not the durable record:
//     the outbox is. After a reconnect paho resends what it had in flight
//     and the Link republishes from the first unacked event, so duplicates
//     are expected; the first copy of each seq arrives in seq order.
//   - In "broker" mode an event leaves the outbox only on a PUBACK the
//     broker sent for it, observed in the Link's session store. paho
//     completes the publish tokens of resent messages without a PUBACK, so
//     tokens are not trusted for this.
//   - The command queue is bounded by the broker's in-flight limit for the
//     session (mosquitto's max_inflight_messages); a broker configured
//     without one can queue as many commands as it holds.
//   - Config.Clock drives the link's own timers (the reconnect backoff, the
//     ack timeout, the state throttle, the pacing of repeated log lines);
//     paho's network timeouts run in real time.
//   - A new connection is a new paho client: what the old one had in flight
//     is not resent by paho but published again from the outbox, and a
//     command it delivered and the box acknowledged after the loss comes
//     again from the broker and is answered from the box's stored replies.
//   - Run can be called once per Link.
package mqttlink
