// Package strictjson closes two gaps encoding/json leaves open for input
// from outside: it keeps the last of duplicate object keys silently, and it
// matches object keys to struct fields case-insensitively, so {"Scope":…}
// fills a field tagged "scope" and {"scope":…,"SCOPE":…} lets the later one
// win. Check refuses both; Unmarshal is encoding/json with Check and
// unknown fields refused.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// Problems Check reports (match them with errors.Is).
var (
	ErrDuplicateKey = errors.New("duplicate key")
	ErrCaseMismatch = errors.New("key differs from the field name in case")
)

// Error is a key Check refuses.
type Error struct {
	Err   error  // ErrDuplicateKey or ErrCaseMismatch
	Path  string // where the object is ("" for the top level, "a.b[2]")
	Key   string // the key as the input spells it
	Field string // for ErrCaseMismatch: the field name it differs from
}

func (e *Error) Error() string {
	at := ""
	if e.Path != "" {
		at = " in " + e.Path
	}
	if errors.Is(e.Err, ErrCaseMismatch) {
		return fmt.Sprintf("key %q%s must be spelled %q (field names are case-sensitive)", e.Key, at, e.Field)
	}
	return fmt.Sprintf("key %q appears twice%s", e.Key, at)
}

func (e *Error) Unwrap() error { return e.Err }

// Check reports the first duplicate object key in the JSON value data, at
// any depth, and the first key that names a field of v's type (a pointer to
// a struct, map, slice, ...) only case-insensitively. v may be nil to check
// duplicates only. Keys that name no field are left to the decoder
// (json.Decoder.DisallowUnknownFields). Invalid JSON is an error too, but
// callers that want encoding/json's wording decode first.
func Check(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var t reflect.Type
	if v != nil {
		t = reflect.TypeOf(v)
	}
	return walk(dec, t, nil)
}

// Unmarshal decodes exactly one JSON value from data into v, refusing
// unknown fields, trailing data, duplicate keys and case-variant field
// names.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return Check(data, v)
}

// pathElem is where walk is: a key of an object or an index of an array
// under parent. The path is spelled out only for an Error, so that a
// document nested deep under long keys costs no more than its size.
type pathElem struct {
	parent *pathElem
	key    string
	index  int // for an array element (key "")
	elem   bool
}

func (p *pathElem) String() string {
	if p == nil {
		return ""
	}
	if p.elem {
		return p.parent.String() + "[" + strconv.Itoa(p.index) + "]"
	}
	return join(p.parent.String(), p.key)
}

func walk(dec *json.Decoder, t reflect.Type, path *pathElem) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	t = resolve(t)
	switch tok {
	case json.Delim('{'):
		var fields *fieldSet
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = fieldsOf(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]struct{}{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			if _, dup := seen[key]; dup {
				return &Error{Err: ErrDuplicateKey, Path: path.String(), Key: key}
			}
			seen[key] = struct{}{}
			sub := elem
			if fields != nil {
				ft, ok := fields.exact[key]
				if !ok {
					if name, ok := fields.folded[strings.ToLower(key)]; ok {
						return &Error{Err: ErrCaseMismatch, Path: path.String(), Key: key, Field: name}
					}
				}
				sub = ft
			}
			if err := walk(dec, sub, &pathElem{parent: path, key: key}); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, &pathElem{parent: path, index: i, elem: true}); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// resolve strips pointers and returns nil for types whose JSON shape this
// package cannot know (interfaces, custom unmarshalers such as
// json.RawMessage): their keys are checked for duplicates only.
func resolve(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Kind() == reflect.Interface {
			return nil
		}
		if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) ||
			t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return nil
		}
		if t.Kind() != reflect.Pointer {
			return t
		}
		t = t.Elem()
	}
	return nil
}

// fieldSet is a struct's JSON field names: exactly, and lower-cased.
type fieldSet struct {
	exact  map[string]reflect.Type
	folded map[string]string
}

var fieldCache sync.Map // reflect.Type -> *fieldSet

func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{exact: map[string]reflect.Type{}, folded: map[string]string{}}
	addFields(fs, t, 0)
	v, _ := fieldCache.LoadOrStore(t, fs)
	return v.(*fieldSet)
}

func addFields(fs *fieldSet, t reflect.Type, depth int) {
	if depth > 8 {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(fs, ft, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := fs.exact[name]; ok {
			continue // the shallower field wins, as in encoding/json
		}
		fs.exact[name] = f.Type
		if _, ok := fs.folded[strings.ToLower(name)]; !ok {
			fs.folded[strings.ToLower(name)] = name
		}
	}
}
