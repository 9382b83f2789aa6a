package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzCheck compares Check with an oracle: a JSON document has a duplicate
// key exactly when decoding it into generic values loses keys.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`,
		`{"scope":"/","Scope":"/"}`, `{"a":[1,{"b":[{"c":1,"c":2}]}]}`, `"x"`, `[]`, `{"":1,"":2}`,
		`{"\u0061":1,"a":2}`, `{"scope":"/","tags":{"k":"v"},"items":[{"name":"x"}]}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var generic any
		if json.Unmarshal(data, &generic) != nil {
			_ = Check(data, &request{}) // must not panic
			return
		}
		lost := countKeys(t, data) != countDecoded(generic)
		err := Check(data, nil)
		if lost != errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("Check(%q) = %v; keys lost by decoding: %v", data, err, lost)
		}
		if err != nil && !errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("Check(%q) = %v on valid JSON", data, err)
		}
		var e *Error
		if err := Check(data, &request{}); err != nil && !errors.As(err, &e) {
			t.Fatalf("typed Check(%q) = %v on valid JSON", data, err)
		}
	})
}

// countKeys counts every object key in the token stream of valid JSON.
func countKeys(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	var count func() int
	count = func() int {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		n := 0
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				if _, err := dec.Token(); err != nil {
					t.Fatalf("key: %v", err)
				}
				n += 1 + count()
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				n += count()
			}
			_, _ = dec.Token()
		}
		return n
	}
	return count()
}

func countDecoded(v any) int {
	switch x := v.(type) {
	case map[string]any:
		n := len(x)
		for _, e := range x {
			n += countDecoded(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n += countDecoded(e)
		}
		return n
	}
	return 0
}
