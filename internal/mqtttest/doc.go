// Package mqtttest starts real mosquitto brokers for tests and programs, and
// gives tests a small MQTT client that records what it receives.
//
// The project's MQTT code is tested against the broker it meets in the field,
// Debian's mosquitto, not against a fake. Start runs one mosquitto process per
// call on free loopback ports, with its configuration, persistence database
// and log in the test's temporary directory, and stops it when the test ends.
// When a test fails, the broker's log is printed with the test's output.
//
//	b := mqtttest.Start(t)
//	sub := mqtttest.Dial(t, b.URL())
//	rec := sub.Subscribe("smartbox/box-0001/events")
//	// ... run the code under test against b.URL() ...
//	msgs := rec.WaitFor(t, 1, 5*time.Second)
//
// The broker is configured for tests that push it hard: no limit on queued or
// in-flight messages per client, no payload size limit beyond the protocol's,
// and persistence, so that Restart brings back persistent sessions and their
// queued QoS 1 messages. NewPKI makes certificates for TLS listeners;
// WithWebsockets adds a websockets listener.
//
// StartRabbitCluster runs a RabbitMQ cluster (the Debian rabbitmq-server with
// its MQTT plugin) of a few nodes on loopback ports, through
// .ci/rabbitmq-cluster.sh, for the fleet tests: a clustered broker whose
// nodes can be killed and restarted one at a time. Its persistent sessions
// are mirrored to every node; its retained messages are per node and its
// last wills die with a killed node (see that script for the settings).
//
// A Client dialled with WithClientID and WithCleanSession(false) plays a
// cloud that was away: the broker sends its queued messages as soon as it
// connects, the Client holds them, and Record (or Subscribe) hands them to
// a Recorder in the order they arrived. A Client reconnects by itself when
// the broker restarts.
//
// # Caveats
//
//   - When mosquitto is not installed, Start runs .ci/install-deps.sh from the
//     repository root, which needs root (or passwordless sudo) and Debian's
//     package archive. Set MQTTTEST_MOSQUITTO to use another binary.
//   - The persistence database is written by mosquitto when it stops cleanly
//     (Stop, Restart) and otherwise about every two seconds, so a Kill loses
//     the changes of the last seconds, as it would in the field.
//   - The websockets listener of mosquitto 2.0 binds every address, not only
//     the loopback one: libwebsockets ignores the listener's address. Clients
//     still reach it only through 127.0.0.1.
//   - Broker and Client methods that take no testing.TB fail the test they
//     were made for, so call them from that test's goroutine, as with
//     t.Fatal. Broker.Stop and Broker.Kill may be called from any goroutine.
//   - Programs (the benchmarks, the fleet simulator) use Launch and Connect,
//     which need no test and return errors; Relaunch is Restart for them.
package mqtttest
