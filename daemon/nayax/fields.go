package nayax

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// tagFields binds the members of the struct p points to by their json tag
// names, in declaration order, for decodeObject. A type's JSON names are
// thus written once, in its tags, which both the marshalling (the bytes
// sent) and the lenient decoding read. Each field's address must be a
// json.Unmarshaler, or the field a *Status (null leaves it nil) or a
// []ProductInfo. The layout is worked out once per type.
func tagFields(p any) []field {
	v := reflect.ValueOf(p).Elem()
	members := layoutOf(v.Type())
	fs := make([]field, len(members))
	for i, m := range members {
		fs[i] = field{name: m.name, dst: m.bind(v.Field(m.index).Addr())}
	}
	return fs
}

// member is one tagged field of a struct: its JSON name, its index, and
// how to decode into it given its address.
type member struct {
	name  string
	index int
	bind  func(addr reflect.Value) json.Unmarshaler
}

var layouts sync.Map // reflect.Type → []member

func layoutOf(t reflect.Type) []member {
	if l, ok := layouts.Load(t); ok {
		return l.([]member)
	}
	var ms []member
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		ms = append(ms, member{name: name, index: i, bind: binder(t, f)})
	}
	l, _ := layouts.LoadOrStore(t, ms)
	return l.([]member)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// binder returns how to decode into a field of type f.Type. A type this
// package cannot decode leniently is a bug in this package, found by the
// first test that decodes the struct.
func binder(owner reflect.Type, f reflect.StructField) func(reflect.Value) json.Unmarshaler {
	switch {
	case f.Type == reflect.TypeFor[*Status]():
		return func(a reflect.Value) json.Unmarshaler { return optStatus{a.Interface().(**Status)} }
	case f.Type == reflect.TypeFor[[]ProductInfo]():
		return func(a reflect.Value) json.Unmarshaler { return productList{a.Interface().(*[]ProductInfo)} }
	case reflect.PointerTo(f.Type).Implements(unmarshalerType):
		return func(a reflect.Value) json.Unmarshaler { return a.Interface().(json.Unmarshaler) }
	}
	panic("nayax: no lenient decoder for " + owner.String() + "." + f.Name + " (" + f.Type.String() + ")")
}
