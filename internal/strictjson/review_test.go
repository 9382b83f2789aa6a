package strictjson

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestCheckDeepNestingIsLinear: a document nested deep under long keys
// (what an uploaded body may be) costs memory in proportion to its size,
// not to its depth times its size: the path of an object is spelled out
// only when a key is refused.
func TestCheckDeepNestingIsLinear(t *testing.T) {
	const depth, keyLen = 2000, 500 // a 1 MB document
	key := `"` + strings.Repeat("k", keyLen) + `":`
	doc := []byte(strings.Repeat("{"+key, depth) + "[1,2]" + strings.Repeat("}", depth))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := Check(doc, nil); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64*uint64(len(doc)) {
		t.Errorf("checking a %d-byte document allocated %d bytes", len(doc), n)
	}
	// The path is still named in full when a key is refused.
	bad := []byte(`{"a":[{"b":{"c":1,"c":2}}]}`)
	var e *Error
	if err := Check(bad, nil); !errors.As(err, &e) || e.Path != "a[0].b" || e.Key != "c" {
		t.Fatalf("duplicate key: %v", err)
	}
}
