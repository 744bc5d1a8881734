// Package config reads and checks sitelink's YAML configurations
// (DESIGN.md §4, §5, §7): the edge daemon's (Edge, ParseEdge, LoadEdge)
// and the relay's (Relay, ParseRelay, LoadRelay). Both share the mqtt
// section, with the same defaults and checks; the MQTT client id is
// node.id on the edge and relay.id on a relay replica.
//
// Parsing is strict and exhaustive: ParseEdge does not stop at the first
// mistake but returns a Problems error listing every unknown key, every
// value of the wrong type and every semantic problem, each with its key
// path and line, so that `sitelink config check FILE` can show an operator
// the whole list at once:
//
//	line 9: mqtt.brokr: unknown key
//	line 21: stations[1].number: duplicate station number "5"
//	line 14: terminals[0].stations[1]: unknown station "9"
//	node.id: required
//
// To get there the document is parsed into a yaml.Node tree and walked
// against the Go structs' `yaml` tags, instead of being decoded by yaml.v3
// directly, which stops early and reports types without paths.
//
// Defaults come from Default and are overridden key by key: a key left out
// (or left empty, e.g. a block whose keys are all commented out) keeps its
// default. List elements and blocks get their own defaults (a terminal's
// flow, a station's driver, a sim station's sim block, a bus's 9600 8N1,
// a register's float32; see the Default* functions), and a list in the
// file replaces the default list.
//
// Hardware (DESIGN.md §7) is configured per station: driver gpio takes a
// gpio block (a contactor output, optional feedback, vehicle, charging,
// fault and button inputs, each a line by name with active_low and
// debounce), driver modbus a modbus block (a charge controller's state
// register and enable coil or register, or a controller profile such as
// phoenix-ev-ser with max_current_a), and either takes a meter (a Modbus
// energy meter by profile, e.g. profile: sdm72v2, or by registers with
// profile generic). `sitelink hw scan` guesses the profiles of the units
// on a bus.
// Serial buses are declared once under buses and named by meters and
// controllers. Validate checks that every block matches its driver, that
// names refer to declared buses, that no GPIO line and no (bus, unit) pair
// is used twice, and that every billed station has an energy source.
// Whether the GPIO lines exist is a property of the host, not of the file:
// Edge.CheckPins checks that separately, on the target.
//
// ParseRelay works the same way. Check, CheckFile and CheckHost take
// either kind, for `sitelink config check`: a top-level relay (or nayax) key makes a file a
// relay configuration, anything else is checked as an edge configuration.
//
// Secrets (broker password, Nayax sign key and token secret, callback
// header values) are not in the configuration: it names files, which the
// daemons read with ReadSecret when they start.
//
// The file is written by people and by provisioning tools, so some
// tolerance is deliberate: string keys take any scalar's literal text (an
// unquoted hw_serial 0434334921100366 keeps its leading zero, `number: 5`
// is "5"), integer and number keys also accept quoted digits ("71234996"),
// and YAML anchors, aliases and merge keys (<<) work.
//
// # Caveats
//
//   - Validate checks values, not the machine: files named by
//     password_file, tls.*, *_file and value_file are not opened, and
//     data_dir need not exist yet. CheckHost (`sitelink config check`)
//     and LoadEdgeChecked / LoadRelayChecked (the daemons' start) open
//     them with the loaders the daemons use (files.go: ReadSecret,
//     loadCAs, loadKeyPair), so the check and the start agree. Serial
//     ports are looked up by CheckHost only: a missing adapter faults its
//     stations, not the daemon.
//   - Every *_file key may start with $CREDENTIALS_DIRECTORY or
//     ${CREDENTIALS_DIRECTORY} (systemd's LoadCredential=), expanded
//     while decoding (expandCredentials, the one place), so every later
//     check and open sees the expanded path; unset, the key gets a
//     problem. No other variable is expanded: elsewhere a $ is part of
//     the path.
//   - A value holding Placeholder ("CHANGE-ME") is refused wherever it
//     appears: the packaged template (configs/sitelink.yaml) marks with
//     it what only the site knows, so that it never starts unedited.
//   - ReadSecret trims exactly one trailing newline ("\n" or "\r\n") and
//     nothing else: a secret with deliberate surrounding spaces is kept,
//     and a file saved with two trailing newlines keeps one.
//   - The relay's ack_budget must be below 5s because Nayax waits 5 s for
//     a callback's answer; nothing here can account for the network delay
//     between Nayax and the relay, so leave a margin (the default is 4s).
//   - Callback header names that net/http consumes or rewrites (Host,
//     Content-Length, Content-Type, Transfer-Encoding, Connection…) are
//     refused: a check against them could never pass or would clash
//     with what Nayax itself sends. A header value given inline is a
//     secret in the file; prefer value_file.
//   - A Duration must carry a unit ("120s"); a bare number other than 0 is
//     refused rather than guessed. Whole days are written "90d" (Go's
//     own notation has no days); `config show` prints them in hours.
//   - storage (retention, compaction) is set only in the local file: the
//     ledger opens, and may be compacted, before the fleet's layers are
//     read from it. A retention change by SIGHUP applies at the next
//     hourly pass; compaction settings at the next start.
//   - A gpio station must have a meter, and a modbus station a meter or
//     modbus.energy: a session is billed by its energy, and a station
//     without a reading would give energy away.
//   - GPIO lines are compared by name, ignoring case. Two names for the
//     same line (GPIO17 and a header alias such as P1_11) are not
//     recognised as a duplicate.
//   - Register addresses are the 0-based numbers sent on the wire, written
//     in decimal or as 0x hex. A decimal with a leading zero ("0156") is
//     refused as ambiguous: datasheets print bare hex that way, and
//     yaml.v3 would read it as octal. Other integers with a leading zero
//     (unit: 010) are read as decimal, not octal.
//   - max_power_kw 0 means the default (22 kW), so that a Station built in
//     code validates; read it with Station.PowerLimitKW. A sim station's
//     power_kw must not exceed it.
//   - The meter and controller profiles' register maps belong to the
//     Modbus driver; this package only checks the profile's name. A
//     meter's energy or power block given with a named profile replaces
//     that profile's register; a controller profile replaces state and
//     enable, which must then not be given.
//   - At most 200 problems are listed, and alias expansion is capped, so a
//     hostile file cannot make the check run away.
//   - Only one YAML document is allowed per file; a second one ("---") is
//     reported rather than ignored.
//
// The edge's running configuration is layered (ParseLayers): defaults, the
// file, then the fleet's group and node desired configs (JSON documents
// with the file's keys), merged key by key, a list replacing the list
// below; the whole is validated as one file would be. Provenance tells
// which layer set each key, for `sitelink config show`, and Diff tells
// the daemon what a new configuration changes (the link, stations, keys
// that need a restart).
package config
