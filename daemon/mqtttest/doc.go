// Package mqtttest starts a real MQTT broker for a test: a mosquitto
// process of its own on a free loopback port, with its persistence and
// log in t.TempDir().
//
//	b := mqtttest.Start(t)
//	opts := paho.NewClientOptions().AddBroker(b.URL)
//	...
//	b.Stop()    // outage: clients lose the connection
//	b.Restart() // same port; persistent sessions and queued QoS 1 messages survive
//
// Real components in tests are a design rule (DESIGN.md §8): where
// mosquitto is installed every test gets one. Where it is not, Start falls
// back to the embedded broker of daemon/broker and says so in the test
// log, unless SITELINK_REQUIRE_MOSQUITTO=1, which CI sets so that a
// missing mosquitto fails the run instead of quietly testing less.
//
// The mosquitto configuration follows what sitelink tells operators:
// set_tcp_nodelay (without it a QoS 1 round trip costs ~44 ms of Nagle
// and delayed ACK instead of ~0.2 ms, DESIGN.md §9), no limit on the QoS 1
// messages in flight to a subscriber (mosquitto's default of 20 would
// throttle a relay draining an outbox), and a queue of 100000 messages per
// offline persistent session.
//
// StartWith starts a broker that demands what a fleet broker does: TLS
// (MakeTLS makes a throw-away CA, server and client certificates), client
// certificates whose CommonName is the username, a password file
// (MakePasswordFile) and an ACL. RecordWith is Record with those
// credentials.
//
//	f := mqtttest.MakeTLS(t, "site-0042")
//	b := mqtttest.StartWith(t, mqtttest.Options{TLS: &f, RequireCert: true,
//		ACL: "pattern readwrite sitelink/v1/nodes/%u/#\n"})
//	// b.URL is ssl://127.0.0.1:PORT; f.CAFile, f.ClientCert, f.ClientKey
//	// go into the client's configuration.
//
// StartShipped runs the broker configuration sitelink ships,
// configs/mosquitto.conf with its ACL files sitelink-nodes.acl and
// sitelink-cloud.acl, read from the repository rather than copied, so
// that a test attacks the policy operators install. It is installed as
// the file says (a drop-in under Debian's mosquitto.conf); only ports,
// certificate paths and ACL paths are rewritten, and a file that no
// longer has the expected shape fails the test. Its two listeners each
// trust their own throw-away CA:
//
//	s := mqtttest.StartShipped(t)
//	// s.NodesURL: site controllers, certificates of s.NodeCA
//	node := s.NodeCA.ClientConfig(t, "site-a")
//	// s.CloudURL: relays and the fleet, certificates of s.CloudCA
//	relay := s.CloudCA.ClientConfig(t, "relay-1")
//
// TestShippedACL there records what mosquitto 2.0.11 does with each
// attack a stolen node certificate allows.
//
// # Caveats
//
// The embedded fallback does no TLS, passwords or ACLs: without mosquitto,
// StartWith with any of them skips the test (fails it if RequireEnv=1),
// and so do StartShipped, and MakePasswordFile without mosquitto_passwd.
//
// mosquitto 2.0's acl_file never refuses a SUBSCRIBE: every SUBACK grants,
// and read access is checked per message when it is delivered. A test
// must assert on what is delivered, not on SUBACK codes.
//
// Restart and Start report failure with t.Fatal, so call them from the
// test's goroutine.
//
// Stop sends SIGTERM and waits, which is when mosquitto writes its
// persistence file; state that only an autosave would have written is not
// modelled, so Stop is an orderly shutdown, not a crash.
//
// The embedded fallback keeps its state in memory: Stop suspends it
// (listener closed, clients dropped, sessions kept) and Restart resumes
// it, which matches mosquitto's Stop/Restart as far as tests can see. It
// differs from mosquitto in timing details listed in daemon/broker.
//
// Ports are picked by listening on port 0 and closing again; another
// process can take the port before mosquitto binds it, so Start retries
// with a fresh port, and Restart retries the same port for a while.
// mosquitto counts as started once its log says it is running and a TCP
// connection succeeds, so a connection to a squatter does not count.
//
// On Linux mosquitto gets SIGTERM when the test binary dies (panic,
// -timeout); elsewhere a crashed test can leave its mosquitto behind.
package mqtttest
