//go:build !windows

package handler

import (
	"path/filepath"
	"testing"
)

// BenchmarkWriteSettings measures one settings file with protected
// settings: CMS encryption to the RSA-2048 certificate and an atomic write.
func BenchmarkWriteSettings(b *testing.B) {
	ext := newExt(b, nil, nil)
	if err := Prepare(ext); err != nil {
		b.Fatal(err)
	}
	cert, err := EnsureCert(filepath.Dir(ext.Dir))
	if err != nil {
		b.Fatal(err)
	}
	public := map[string]any{"interval": 60, "names": []any{"a", "b"}}
	protected := []byte(`{"storageAccountKey":"0123456789abcdef0123456789abcdef"}`)
	for i := 0; b.Loop(); i++ {
		if err := WriteSettings(ext, i%8, public, protected, cert); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRun measures the cost of running a trivial handler command
// (shell start, log rotation, output capture), without a CPU limit.
func BenchmarkRun(b *testing.B) {
	ext := newExt(b, map[string]string{"bin/ok.sh": "#!/bin/sh\necho ok\n"}, map[Op]string{OpEnable: "bin/ok.sh"})
	var r Runner
	for b.Loop() {
		if _, err := r.Run(b.Context(), ext, OpEnable, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStatus(b *testing.B) {
	data := []byte(`[{"version":1.0,"timestampUTC":"2026-12-03T12:00:00Z","status":{"name":"x","operation":"Enable","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"Enable succeeded"},"substatus":[{"name":"StdOut","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"hello"}}]}}]`)
	for b.Loop() {
		if _, err := ParseStatus(data); err != nil {
			b.Fatal(err)
		}
	}
}
