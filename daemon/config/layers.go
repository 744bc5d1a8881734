package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Where a value of the effective configuration came from.
const (
	SourceDefault = "default" // nobody set it
	SourceFile    = "file"    // the local YAML file
	SourceGroup   = "group"   // P/groups/G/config/desired
	SourceNode    = "node"    // P/nodes/N/config/desired
)

// MaxDesired caps a desired document's size: a configuration is a few
// kilobytes, and the payload arrives from the network.
const MaxDesired = 256 << 10

// Desired is one fleet configuration document, {"version":int,"config":{…}}
// (DESIGN.md §3). Config uses the keys of the YAML file, spelled as JSON.
type Desired struct {
	Version int64           `json:"version"`
	Config  json.RawMessage `json:"config"`
}

// ParseDesired decodes a desired document strictly: a positive integer
// version and an object config. The error says what is wrong in the words
// a fleet operator needs ("version: must be a positive integer").
func ParseDesired(payload []byte) (Desired, error) {
	var d Desired
	if len(payload) > MaxDesired {
		return d, fmt.Errorf("document too large (%d bytes, at most %d)", len(payload), MaxDesired)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return d, fmt.Errorf("not a JSON object: %v", err)
	}
	for k := range raw {
		if k != "version" && k != "config" {
			return d, fmt.Errorf("%s: unknown key (want version and config)", quote(k))
		}
	}
	v, ok := raw["version"]
	if !ok {
		return d, errors.New("version: required")
	}
	if err := json.Unmarshal(v, &d.Version); err != nil || d.Version <= 0 {
		return d, fmt.Errorf("version: must be a positive integer, got %s", quote(string(v)))
	}
	c, ok := raw["config"]
	if !ok || !bytes.HasPrefix(bytes.TrimSpace(c), []byte("{")) {
		return d, errors.New("config: required, an object")
	}
	d.Config = c
	return d, nil
}

// Layers is what the edge's configuration is made of, lowest first: the
// defaults, the local file, the group's desired config, the node's.
type Layers struct {
	File  []byte
	Group *Desired // nil: no group config
	Node  *Desired // nil: no node config
}

// networkOnlyFile lists what a desired config must not set: what the node
// needs to reach the fleet at all and what identifies it (DESIGN.md §5).
// A wrong value there could not be corrected over MQTT afterwards.
var networkOnlyFile = map[string]string{
	"node":               "identifies this controller",
	"mqtt.broker":        "is how the node reaches the fleet",
	"mqtt.username":      "is a credential",
	"mqtt.password_file": "is a credential",
	"mqtt.tls":           "holds credentials",
	"mqtt.topic_prefix":  "names the topics the fleet config itself arrives on",
	"mqtt.group":         "chooses which group config applies",
	"storage":            "is this controller's disk, read when the ledger opens",
}

// Provenance maps key paths (as in Problems) to the source that set them.
// A path that is absent inherits from its nearest ancestor, and a path with
// no ancestor present is a default.
type Provenance map[string]string

// Source returns where the value at path came from.
func (p Provenance) Source(path string) string {
	for q := path; ; q = parentPath(q) {
		if s, ok := p[q]; ok {
			return s
		}
		if q == "" {
			return SourceDefault
		}
	}
}

// ParseLayers builds the effective edge configuration: defaults, the file,
// then the group's and the node's desired configs merged key by key (a
// list replaces the list below it). The result is validated as a whole,
// exactly like `config check`; problems from a desired config have no line
// and their path is the key in that config. Keys that only the file may set
// are refused in a desired config.
func ParseLayers(l Layers) (*Edge, Provenance, error) {
	e := Default()
	d := newDecoder()
	prov := Provenance{}
	if p := d.decodeDocument(l.File, &e); p != nil {
		return nil, nil, Problems{*p}
	}
	// A block (a mapping of keys) is not a value: the keys in it say
	// where they came from, the ones left out stay defaults.
	for k := range d.lines {
		if !d.blocks[k] {
			prov[k] = SourceFile
		}
	}
	fileLines := d.lines
	for _, layer := range []struct {
		src string
		des *Desired
	}{{SourceGroup, l.Group}, {SourceNode, l.Node}} {
		if layer.des == nil {
			continue
		}
		root, err := jsonNodes(layer.des.Config)
		if err != nil {
			return nil, nil, Problems{{Reason: layer.src + " config: invalid JSON: " + err.Error()}}
		}
		if root == nil {
			continue
		}
		before := len(d.probs)
		d.lines = map[string]int{}
		clear(d.blocks)
		refuseFileOnly(d, root)
		d.decode(root, reflect.ValueOf(&e).Elem(), "")
		for i := before; i < len(d.probs); i++ {
			d.probs[i].Line = 0 // a line in a JSON payload helps nobody
		}
		for k := range d.lines {
			if d.blocks[k] {
				continue
			}
			// A list set here replaces what the layers below said
			// about any of its elements.
			for q := range prov {
				if strings.HasPrefix(q, k+"[") || strings.HasPrefix(q, k+".") {
					delete(prov, q)
				}
			}
		}
		for k := range d.lines {
			if !d.blocks[k] {
				prov[k] = layer.src
			}
		}
	}
	d.lines = fileLines
	e.fillSimDefaults()
	if d.runaway == nil {
		for _, p := range e.Validate() {
			if d.isFailed(p.Path) {
				continue
			}
			if src := prov.Source(p.Path); src == SourceFile || src == SourceDefault {
				p.Line = d.lineFor(p.Path)
			}
			d.add(p)
		}
	}
	if probs := d.problems(); probs != nil {
		return nil, nil, probs
	}
	return &e, prov, nil
}

// jsonNodes turns a JSON document into the yaml.Node tree the decoder
// walks, in document order. JSON is not parsed as YAML: escapes such as
// "\/" and surrogate pairs are JSON-only, and YAML would fold some
// characters (U+0085, U+2028) inside strings.
func jsonNodes(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var value func() (*yaml.Node, error)
	value = func() (*yaml.Node, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case json.Delim:
			kind, end := yaml.MappingNode, json.Delim('}')
			if t == '[' {
				kind, end = yaml.SequenceNode, ']'
			}
			n := &yaml.Node{Kind: kind}
			for dec.More() {
				if kind == yaml.MappingNode {
					k, err := dec.Token()
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.(string)})
				}
				c, err := value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, c)
			}
			if tok, err := dec.Token(); err != nil || tok != end {
				return nil, fmt.Errorf("unbalanced %v", t)
			}
			return n, nil
		case string:
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
		case json.Number:
			tag := "!!float"
			if _, err := t.Int64(); err == nil {
				tag = "!!int"
			}
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: t.String()}, nil
		case bool:
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
		case nil:
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		return nil, fmt.Errorf("unexpected %v", tok)
	}
	root, err := value()
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the document")
	}
	return root, nil
}

// refuseFileOnly removes (and reports) the keys of a desired config that
// only the local file may set, so that the rest is still checked.
func refuseFileOnly(d *decoder, root *yaml.Node) {
	if root.Kind != yaml.MappingNode {
		return
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				kept = append(kept, k, v)
				continue
			}
			p := keyPath(path, k.Value)
			if why, ok := networkOnlyFile[p]; ok {
				d.fail(p, 0, "set only in the local file, never over MQTT (it "+why+")")
				continue
			}
			if v.Kind == yaml.MappingNode && path == "" && k.Value == "mqtt" {
				walk(v, p)
			}
			kept = append(kept, k, v)
		}
		n.Content = kept
	}
	walk(root, "")
}

// Setting is one leaf of the effective configuration, for `config show`.
type Setting struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// Settings lists every leaf of e in file order with its source.
func Settings(e *Edge, prov Provenance) []Setting {
	var out []Setting
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		if v.Type() == durationType {
			out = append(out, Setting{path, Duration(v.Int()).String(), prov.Source(path)})
			return
		}
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "-" {
					continue
				}
				walk(v.Field(i), keyPath(path, name))
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() != reflect.Struct {
				vals := make([]any, v.Len())
				for i := range v.Len() {
					vals[i] = v.Index(i).Interface()
				}
				out = append(out, Setting{path, vals, prov.Source(path)})
				return
			}
			for i := range v.Len() {
				walk(v.Index(i), path+"["+strconv.Itoa(i)+"]")
			}
		default:
			out = append(out, Setting{path, v.Interface(), prov.Source(path)})
		}
	}
	walk(reflect.ValueOf(e).Elem(), "")
	return out
}

// Change is how a new configuration differs from the running one, in the
// terms the daemon applies it by.
type Change struct {
	MQTT     bool     // the link must reconnect with new settings
	Restart  []string // keys that differ and only take effect on a restart
	Stations []string // stations added, removed or redefined (incl. their bus)
	Other    bool     // terminals, policy, tariff, storage
}

// None reports whether nothing changed.
func (c Change) None() bool {
	return !c.MQTT && len(c.Restart) == 0 && len(c.Stations) == 0 && !c.Other
}

// Diff compares two valid configurations.
func Diff(old, new *Edge) Change {
	var c Change
	c.MQTT = !reflect.DeepEqual(old.MQTT, new.MQTT)
	for _, k := range []struct {
		key  string
		a, b string
	}{
		{"node.id", old.Node.ID, new.Node.ID},
		{"node.data_dir", old.Node.DataDir, new.Node.DataDir},
		{"node.api_socket", old.Node.APISocket, new.Node.APISocket},
		{"node.metrics_listen", old.Node.MetricsListen, new.Node.MetricsListen},
		// The topics the node is subscribed to and publishes on.
		{"mqtt.topic_prefix", old.MQTT.TopicPrefix, new.MQTT.TopicPrefix},
		{"mqtt.group", old.MQTT.Group, new.MQTT.Group},
	} {
		if k.a != k.b {
			c.Restart = append(c.Restart, k.key)
		}
	}
	c.Other = !reflect.DeepEqual(old.Terminals, new.Terminals) ||
		!reflect.DeepEqual(old.Policy, new.Policy) || !reflect.DeepEqual(old.Tariff, new.Tariff) ||
		!reflect.DeepEqual(old.Storage, new.Storage) // retention applies at its next pass; compaction at the next start
	busChanged := func(name string) bool {
		a, okA := old.Bus(name)
		b, okB := new.Bus(name)
		return okA != okB || !reflect.DeepEqual(a, b)
	}
	touched := map[string]bool{}
	for _, s := range new.Stations {
		o, ok := old.Station(s.Number)
		if !ok || !reflect.DeepEqual(o, s) {
			touched[s.Number] = true
			continue
		}
		for _, b := range s.Buses() {
			if busChanged(b) {
				touched[s.Number] = true
			}
		}
		if s.Driver == DriverModbus && old.Policy.ContactorTimeout != new.Policy.ContactorTimeout {
			touched[s.Number] = true // the controller's confirm timeout
		}
	}
	for _, s := range old.Stations {
		if _, ok := new.Station(s.Number); !ok {
			touched[s.Number] = true
		}
	}
	if !slices.Equal(stationNumbers(old), stationNumbers(new)) {
		c.Other = true // order shown in the state and listings
	}
	for n := range touched {
		c.Stations = append(c.Stations, n)
	}
	sort.Strings(c.Stations)
	return c
}

func stationNumbers(e *Edge) []string {
	out := make([]string, len(e.Stations))
	for i, s := range e.Stations {
		out[i] = s.Number
	}
	return out
}

// Buses names the serial buses the station uses (its meter's, its
// controller's).
func (s Station) Buses() []string {
	var out []string
	if s.Meter != nil {
		out = append(out, s.Meter.Bus)
	}
	if s.Modbus != nil {
		out = append(out, s.Modbus.Bus)
	}
	return out
}
