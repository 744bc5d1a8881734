// Package config reads and checks the edge daemon's YAML configuration
// (DESIGN.md §5).
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
// default. List elements get their own defaults (a terminal's flow, a
// station's driver, a sim station's sim block), and a list in the file
// replaces the default list.
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
//     password_file and tls.* are not opened, and data_dir need not exist
//     yet. The daemon reports those when it starts.
//   - A Duration must carry a unit ("120s"); a bare number other than 0 is
//     refused rather than guessed.
//   - Stations with driver gpio or modbus are refused by this build; the
//     drivers land in a later release.
//   - At most 200 problems are listed, and alias expansion is capped, so a
//     hostile file cannot make the check run away.
//   - Only one YAML document is allowed per file; a second one ("---") is
//     reported rather than ignored.
package config
