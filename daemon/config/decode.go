package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The strict decoder. yaml.v3's own KnownFields mode stops at the first
// unknown key and reports type errors without key paths, so the document is
// parsed into a yaml.Node tree and walked here against the Go structs (their
// `yaml` tags), collecting every problem with its path and line.

const (
	// maxProblems caps the list so that a file of garbage (or an alias
	// bomb) cannot produce an unbounded report.
	maxProblems = 200
	// maxVisits caps the nodes and keys visited. Aliases and merge keys
	// let a small document expand into a huge one; a real configuration
	// needs a few hundred.
	maxVisits = 100_000
)

var (
	durationType = reflect.TypeFor[Duration]()
	terminalType = reflect.TypeFor[Terminal]()
	stationType  = reflect.TypeFor[Station]()
	simType      = reflect.TypeFor[Sim]()
	busType      = reflect.TypeFor[Bus]()
	gpioType     = reflect.TypeFor[GPIO]()
	modbusType   = reflect.TypeFor[Modbus]()
	meterType    = reflect.TypeFor[Meter]()
	registerType = reflect.TypeFor[Register]()
)

// elemDefault is the value a new list element or a newly allocated pointer
// starts from, so that defaults apply per element.
func elemDefault(t reflect.Type) reflect.Value {
	switch t {
	case terminalType:
		return reflect.ValueOf(defaultTerminal())
	case stationType:
		return reflect.ValueOf(defaultStation())
	case simType:
		return reflect.ValueOf(DefaultSim())
	case busType:
		return reflect.ValueOf(DefaultBus())
	case gpioType:
		return reflect.ValueOf(DefaultGPIO())
	case modbusType:
		return reflect.ValueOf(DefaultModbus())
	case meterType:
		return reflect.ValueOf(DefaultMeter())
	case registerType:
		// Only *Register (energy, power) is allocated here; the state
		// register is a value inside Modbus and gets its defaults there.
		return reflect.ValueOf(DefaultRegister())
	}
	return reflect.Zero(t)
}

type decoder struct {
	probs    Problems
	overflow bool
	runaway  *Problem // set when maxVisits was exceeded
	visits   int
	failed   map[string]bool           // paths whose value could not be decoded
	lines    map[string]int            // path -> line of its key or list element
	active   map[*yaml.Node]bool       // anchors being expanded, to stop cycles
	fields   map[reflect.Type]fieldMap // cached yaml tag -> field index
	blocks   map[string]bool           // paths decoded as a block of keys or null: not values
	// placeholders counts the values still holding Placeholder.
	placeholders int
}

type fieldMap map[string]int

func newDecoder() *decoder {
	return &decoder{
		failed: map[string]bool{},
		lines:  map[string]int{},
		active: map[*yaml.Node]bool{},
		fields: map[reflect.Type]fieldMap{},
		blocks: map[string]bool{},
	}
}

func (d *decoder) add(p Problem) {
	if len(d.probs) >= maxProblems {
		d.overflow = true
		return
	}
	d.probs = append(d.probs, p)
}

func (d *decoder) problem(path string, line int, reason string) {
	d.add(Problem{Path: path, Line: line, Reason: reason})
}

// fail records a value that could not be decoded; the default stays in its
// place and semantic checks on the path are suppressed.
func (d *decoder) fail(path string, line int, reason string) {
	d.failed[path] = true
	d.problem(path, line, reason)
}

// problems returns what was collected in file order (problems without a
// line, which concern the file as a whole, first), as a compiler would list
// them; within a line, decoding problems come before semantic ones.
func (d *decoder) problems() Problems {
	if len(d.probs) == 0 && d.runaway == nil {
		return nil
	}
	probs := slices.Clone(d.probs)
	slices.SortStableFunc(probs, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	if d.runaway != nil {
		probs = append(probs, *d.runaway)
	}
	if d.overflow {
		probs = append(probs, Problem{Reason: fmt.Sprintf("too many problems; only the first %d are shown", maxProblems)})
	}
	return probs
}

// isFailed reports whether path, one of its ancestors or one of its
// descendants failed to decode: a semantic check there would judge a default
// that stands in for the undecodable value (e.g. "machine_id or hw_serial
// required" after machine_id: abc).
func (d *decoder) isFailed(path string) bool {
	for p := path; ; p = parentPath(p) {
		if d.failed[p] {
			return true
		}
		if p == "" {
			break
		}
	}
	for f := range d.failed {
		if strings.HasPrefix(f, path+".") || strings.HasPrefix(f, path+"[") {
			return true
		}
	}
	return false
}

// lineFor returns the line of path or of its nearest ancestor in the file:
// a missing key is best reported at the block that should hold it.
func (d *decoder) lineFor(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
	}
	return 0
}

// parentPath strips the last ".key" or "[i]" from a path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

var syntaxErrRE = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a yaml.v3 parse error into a Problem with its line.
func syntaxProblem(err error) *Problem {
	msg := err.Error()
	p := &Problem{}
	if m := syntaxErrRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	p.Reason = "invalid YAML: " + msg
	return p
}

// parseNodes reads the single YAML document in data; nil means an empty
// document. The library's internal panics (as opposed to its errors) are
// turned into a problem: a configuration check must report, not crash.
func parseNodes(data []byte) (root *yaml.Node, prob *Problem) {
	defer func() {
		if r := recover(); r != nil {
			root, prob = nil, &Problem{Reason: fmt.Sprintf("invalid YAML: parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxProblem(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err)
	default:
		// A second document would be silently ignored by a plain
		// Unmarshal; in a strict config that hides edits.
		return nil, &Problem{Line: extra.Line, Reason: "invalid YAML: more than one document (remove the extra '---')"}
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// decodeDocument parses data and merges it over target, a pointer to the
// configuration struct holding the defaults. It returns a Problem only for
// YAML syntax errors; everything else is collected in d.
func (d *decoder) decodeDocument(data []byte, target any) *Problem {
	root, prob := parseNodes(data)
	if prob != nil {
		return prob
	}
	if root != nil {
		d.decode(root, reflect.ValueOf(target).Elem(), "")
	}
	return nil
}

// visit counts a node against maxVisits and reports the first overrun.
func (d *decoder) visit(n *yaml.Node, path string) bool {
	d.visits++
	if d.visits == maxVisits+1 {
		// Kept aside so that the problem cap cannot drop it.
		d.runaway = &Problem{Path: path, Line: n.Line, Reason: "document too complex: too many nodes after alias expansion; stopped reading"}
	}
	return d.visits <= maxVisits
}

// enter marks an anchor as being expanded; it refuses an anchor that is
// already being expanded, which would recurse forever.
func (d *decoder) enter(alias *yaml.Node, path string) bool {
	if alias.Alias == nil {
		d.fail(path, alias.Line, fmt.Sprintf("unknown alias *%s", alias.Value))
		return false
	}
	if d.active[alias.Alias] {
		d.fail(path, alias.Line, fmt.Sprintf("alias *%s refers to a block that contains it", alias.Value))
		return false
	}
	d.active[alias.Alias] = true
	return true
}

func (d *decoder) leave(alias *yaml.Node) { delete(d.active, alias.Alias) }

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decode merges node n into v. A null value keeps the default, so that a
// block whose keys are all commented out behaves like a missing block.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.visit(n, path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		if d.enter(n, path) {
			d.decode(n.Alias, v, path)
			d.leave(n)
		}
		return
	}
	if isNull(n) {
		d.blocks[path] = true // sets nothing: not a value of this layer
		return
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, Placeholder) {
		// Before any type check: "expected an integer" would hide
		// that the value was never filled in.
		// A string keeps it, so that checks of other keys that depend
		// on this one judge what the template means (an ssl:// broker
		// with its tls block), not the default.
		d.placeholders++
		d.fail(path, n.Line, fmt.Sprintf("not set yet: %s is the template's placeholder", quote(n.Value)))
		if v.Kind() == reflect.String {
			v.SetString(n.Value)
		}
		return
	}
	if v.Type() == durationType {
		d.decodeDuration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n.Line, "expected a mapping of keys, got "+describe(n))
			return
		}
		d.decodeStruct(n, v, path)
	case reflect.Pointer:
		if v.IsNil() {
			nv := reflect.New(v.Type().Elem())
			nv.Elem().Set(elemDefault(v.Type().Elem()))
			v.Set(nv)
		}
		d.decode(n, v.Elem(), path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		// Any scalar's literal text: an unquoted 0434334921100366 keeps
		// its leading zero and `number: 5` becomes "5".
		if !d.scalar(n, path, "a string") {
			return
		}
		val := n.Value
		if strings.HasSuffix(path, "_file") {
			var err error
			if val, err = expandCredentials(val); err != nil {
				d.fail(path, n.Line, err.Error())
				return
			}
		}
		v.SetString(val)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.decodeInt(n, v, path)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.decodeUint(n, v, path)
	case reflect.Float32, reflect.Float64:
		d.decodeFloat(n, v, path)
	case reflect.Bool:
		if !d.scalar(n, path, "true or false") {
			return
		}
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(path, n.Line, "expected true or false, got "+describe(n))
			return
		}
		v.SetBool(b)
	default:
		d.fail(path, n.Line, "internal error: no decoder for "+v.Type().String())
	}
}

// scalar checks that n is a scalar, reporting what was expected otherwise.
func (d *decoder) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n.Line, fmt.Sprintf("expected %s, got %s", want, describe(n)))
		return false
	}
	return true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	d.blocks[path] = true
	fields := d.fieldsOf(v.Type())
	// YAML merge keys ("<<: *defaults") first: explicit keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			d.merge(n.Content[i+1], v, path, true)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			continue
		}
		if !d.visit(k, path) {
			return
		}
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(path, k.Line, "keys must be plain names, got "+describe(k))
			continue
		}
		p := keyPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.problem(p, k.Line, fmt.Sprintf("duplicate key (first at line %d)", first))
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.problem(p, k.Line, "unknown key")
			continue
		}
		d.lines[p] = k.Line
		d.decode(val, v.Field(idx), p)
	}
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// merge applies the value of a "<<" key: a mapping, an alias to one, or a
// list of those where earlier entries win (YAML merge key semantics).
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string, listOK bool) {
	mp := "<<"
	if path != "" {
		mp = path + ".<<"
	}
	if !d.visit(n, mp) {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		if d.enter(n, mp) {
			d.merge(n.Alias, v, path, false)
			d.leave(n)
		}
	case yaml.MappingNode:
		d.decodeStruct(n, v, path)
	case yaml.SequenceNode:
		if listOK {
			for i := len(n.Content) - 1; i >= 0; i-- {
				d.merge(n.Content[i], v, path, false)
			}
			return
		}
		fallthrough
	default:
		d.fail(mp, n.Line, "merge value must be a mapping or a list of mappings, got "+describe(n))
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, n.Line, "expected a list, got "+describe(n))
		return
	}
	if len(n.Content) == 0 {
		// nil, not empty: "terminals: []" means the same as no terminals.
		v.Set(reflect.Zero(v.Type()))
		return
	}
	et := v.Type().Elem()
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		ev := reflect.New(et).Elem()
		ev.Set(elemDefault(et))
		d.lines[p] = c.Line
		d.decode(c, ev, p)
		out = reflect.Append(out, ev)
	}
	// The list replaces the default rather than extending it.
	v.Set(out)
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if !d.scalar(n, path, `a duration such as "120s"`) {
		return
	}
	dur, err := parseDuration(n.Value)
	if err != nil {
		d.fail(path, n.Line, err.Error())
		return
	}
	v.SetInt(int64(dur))
}

// leadingZeroRE matches a decimal integer with a leading zero, which
// yaml.v3 would read as octal ("010" is 8).
var leadingZeroRE = regexp.MustCompile(`^[-+]?0[0-9]+$`)

// decodeInt accepts YAML integers and, because Nayax ids are written
// either way, strings holding a decimal integer ("71234996"). A leading
// zero does not make a number octal: nobody writing `unit: 010` means 8.
func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	if !d.scalar(n, path, "an integer") {
		return
	}
	var i int64
	var err error
	switch tag := n.ShortTag(); {
	case tag == "!!int" && !leadingZeroRE.MatchString(n.Value):
		err = n.Decode(&i)
	case tag == "!!int", tag == "!!str":
		i, err = strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
	default:
		err = errors.New("not an integer")
	}
	if err != nil {
		d.fail(path, n.Line, "expected an integer, got "+describe(n))
		return
	}
	if v.OverflowInt(i) {
		d.fail(path, n.Line, fmt.Sprintf("integer %d out of range", i))
		return
	}
	v.SetInt(i)
}

// decodeUint reads a register address: decimal or 0x hexadecimal, quoted
// or not. Datasheets print addresses both ways, often as bare hex digits
// ("0156"), so a decimal with a leading zero is refused as ambiguous
// rather than read as decimal, or as octal as yaml.v3 would.
func (d *decoder) decodeUint(n *yaml.Node, v reflect.Value, path string) {
	if !d.scalar(n, path, "an integer") {
		return
	}
	s := strings.TrimSpace(n.Value)
	var u uint64
	var err error
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		u, err = strconv.ParseUint(s[2:], 16, 64)
	case leadingZeroRE.MatchString(s):
		d.fail(path, n.Line, fmt.Sprintf("ambiguous number %s: write 0x%s if it is hexadecimal, or drop the leading zero", quote(s), strings.TrimLeft(s, "+-")))
		return
	default:
		u, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil || v.OverflowUint(u) {
		maxU := uint64(1)<<v.Type().Bits() - 1
		d.fail(path, n.Line, fmt.Sprintf("expected an integer from 0 to %d (0x%X), decimal or 0x hex, got %s", maxU, maxU, describe(n)))
		return
	}
	v.SetUint(u)
}

// decodeFloat accepts YAML numbers and strings holding one; NaN and
// infinities are refused because every number here is a price, an energy
// or a power, and comparisons against NaN would slip through validation.
func (d *decoder) decodeFloat(n *yaml.Node, v reflect.Value, path string) {
	if !d.scalar(n, path, "a number") {
		return
	}
	var f float64
	var err error
	switch n.ShortTag() {
	case "!!int", "!!float":
		err = n.Decode(&f)
	case "!!str":
		f, err = strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
	default:
		err = errors.New("not a number")
	}
	if err != nil {
		d.fail(path, n.Line, "expected a number, got "+describe(n))
		return
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.fail(path, n.Line, "expected a finite number, got "+describe(n))
		return
	}
	if v.OverflowFloat(f) {
		d.fail(path, n.Line, "number "+describe(n)+" out of range")
		return
	}
	v.SetFloat(f)
}

// fieldsOf maps yaml tag names to field indexes.
func (d *decoder) fieldsOf(t reflect.Type) fieldMap {
	if m, ok := d.fields[t]; ok {
		return m
	}
	m := fieldMap{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	d.fields[t] = m
	return m
}

// describe names a node for a message: its kind, or a scalar's quoted text.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return quote(n.Value)
}

const maxQuoted = 64

// quote renders text for a message: Go-quoted, so control characters from a
// hostile or broken file cannot reach the terminal raw, and truncated.
func quote(s string) string {
	if utf8.RuneCountInString(s) > maxQuoted {
		r := []rune(s)
		return strconv.Quote(string(r[:maxQuoted])) + "..."
	}
	return strconv.Quote(s)
}

func isPlainKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// keyPath appends a key to a path; odd keys are quoted so that the path
// stays readable and unambiguous.
func keyPath(path, key string) string {
	if !isPlainKey(key) {
		key = quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
