package nayax

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
)

// forward marshals v without HTML escaping, so that a Literal string
// comes out byte for byte, and without the encoder's trailing newline.
// It returns nil only for a value JSON cannot carry (a NaN or infinite
// Amount set by hand); decoded requests never hold one.
//
// The relay forwards every callback it answers, so a request whose
// fields are all of this package's value types is written directly:
// the bytes the encoder writes (FuzzForwardSameBytes), without its
// reflection and without checking and compacting each field's JSON once
// more. Anything else goes through the encoder.
func forward(v any) json.RawMessage {
	if b, ok := appendFlat(make([]byte, 0, 512), v); ok {
		return b
	}
	return forwardEncoder(v)
}

func forwardEncoder(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil
	}
	return json.RawMessage(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// flatMember is a field appendFlat writes: its `"name":` and whether
// omitzero drops it when zero.
type flatMember struct {
	key      string
	index    int
	omitzero bool
}

// flatLayouts caches, per struct type, its members when every exported
// field is tagged with a name and at most omitzero and is a Text, Int64,
// Literal or Amount; nil otherwise (the encoder writes it).
var flatLayouts sync.Map // reflect.Type → []flatMember

var flatTypes = map[reflect.Type]bool{
	reflect.TypeFor[Text](): true, reflect.TypeFor[Int64](): true,
	reflect.TypeFor[Literal](): true, reflect.TypeFor[Amount](): true,
}

func flatLayout(t reflect.Type) []flatMember {
	if l, ok := flatLayouts.Load(t); ok {
		return l.([]flatMember)
	}
	var ms []flatMember
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			// The encoder promotes an embedded struct's fields, even
			// from an unexported one.
			ms = nil
			break
		}
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !flatTypes[f.Type] || !identifier(name) || names[name] || (opts != "" && opts != "omitzero") {
			// Untagged, a name the encoder would refuse or drop as a
			// duplicate, another option or type: the encoder's.
			ms = nil
			break
		}
		names[name] = true
		ms = append(ms, flatMember{key: `"` + name + `":`, index: i, omitzero: opts == "omitzero"})
	}
	l, _ := flatLayouts.LoadOrStore(t, ms)
	return l.([]flatMember)
}

// identifier reports whether a tag name is letters, digits and
// underscores, which every encoder takes as it is.
func identifier(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return name != ""
}

// appendFlat appends p's JSON object when p points to a struct
// flatLayout knows; ok is false otherwise, and for a value JSON cannot
// carry.
func appendFlat(dst []byte, p any) (b []byte, ok bool) {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return dst, false
	}
	v = v.Elem()
	ms := flatLayout(v.Type())
	if ms == nil {
		return dst, false
	}
	dst = append(dst, '{')
	first := true
	for _, m := range ms {
		var err error
		mark := len(dst)
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, m.key...)
		switch f := v.Field(m.index).Addr().Interface().(type) {
		case *Text:
			if m.omitzero && *f == (Text{}) {
				dst = dst[:mark]
				continue
			}
			dst = f.appendJSON(dst)
		case *Int64:
			if m.omitzero && *f == (Int64{}) {
				dst = dst[:mark]
				continue
			}
			dst = f.appendJSON(dst)
		case *Literal:
			if m.omitzero && f.IsZero() {
				dst = dst[:mark]
				continue
			}
			if strings.Contains(f.raw, "\u2028") || strings.Contains(f.raw, "\u2029") {
				// A string holding U+2028 or U+2029 as it came: one
				// encoder escapes them, another not.
				return dst, false
			}
			dst = f.appendJSON(dst)
		case *Amount:
			if !f.Valid && f.V == 0 && math.Signbit(f.V) && f.text == "" {
				// Whether omitzero drops this absent amount holding a
				// negative zero differs between encoders; only a value
				// set by hand holds it.
				return dst, false
			}
			if m.omitzero && *f == (Amount{}) {
				dst = dst[:mark]
				continue
			}
			dst, err = f.appendJSON(dst)
		default:
			return dst, false
		}
		if err != nil {
			return dst, false
		}
		first = false
	}
	return append(dst, '}'), true
}
