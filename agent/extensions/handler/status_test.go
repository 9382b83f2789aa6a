//go:build !windows

package handler

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name, in string
		want     *Status
		wantErr  string
	}{
		{name: "azure format", in: `[{"version":1.0,"timestampUTC":"2026-12-03T12:00:00Z","status":{"name":"x","operation":"Enable","status":"success","code":0,
			"formattedMessage":{"lang":"en-US","message":"Enable succeeded"},
			"substatus":[{"name":"StdOut","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"hello"}}]}}]`,
			want: &Status{Name: "x", Operation: "Enable", Status: "success", Message: "Enable succeeded",
				Timestamp: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC),
				Substatus: []Substatus{{Name: "StdOut", Status: "success", Message: "hello"}}}},
		{name: "string code, BOM, upper case, no timestamp", in: "\ufeff" + `[{"version":"1.0","status":{"operation":"Install","status":"Error","code":"52","formattedMessage":{"message":"m"}}}]`,
			want: &Status{Operation: "Install", Status: "error", Code: 52, Message: "m"}},
		{name: "timestamp without zone", in: `[{"timestampUTC":"2026-12-03T12:00:00","status":{"status":"transitioning"}}]`,
			want: &Status{Status: "transitioning", Timestamp: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}},
		{name: "not an array", in: `{"status":{"status":"success"}}`, wantErr: "JSON array"},
		{name: "empty array", in: `[]`, wantErr: "empty"},
		{name: "no status object", in: `[{"version":1}]`, wantErr: `no "status"`},
		{name: "bad status value", in: `[{"status":{"status":"done"}}]`, wantErr: `"done"`},
		{name: "bad code", in: `[{"status":{"status":"success","code":"x"}}]`, wantErr: "code"},
		{name: "truncated", in: `[{"status":{"status":"succ`, wantErr: "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want.Name || got.Operation != tt.want.Operation || got.Status != tt.want.Status ||
				got.Code != tt.want.Code || got.Message != tt.want.Message || !got.Timestamp.Equal(tt.want.Timestamp) ||
				len(got.Substatus) != len(tt.want.Substatus) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got.Substatus {
				if got.Substatus[i] != tt.want.Substatus[i] {
					t.Errorf("substatus[%d] = %+v, want %+v", i, got.Substatus[i], tt.want.Substatus[i])
				}
			}
		})
	}
}

func TestParseStatusBoundsText(t *testing.T) {
	long := strings.Repeat("é", 5000)
	got, err := ParseStatus([]byte(`[{"status":{"status":"warning","formattedMessage":{"message":"` + long + `"}}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Message) > MaxStatusMessage || !strings.HasSuffix(got.Message, truncated) {
		t.Errorf("message of %d bytes, want ≤ %d ending in %q", len(got.Message), MaxStatusMessage, truncated)
	}
	if !strings.HasPrefix(got.Message, "éé") || strings.ContainsRune(got.Message, '\uFFFD') {
		t.Errorf("message cut inside a character")
	}
}

func TestReadStatus(t *testing.T) {
	ext := newExt(t, nil, nil)
	if err := Prepare(ext); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatus(ext, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("absent status: %v, want ErrNotExist", err)
	}
	writeTest(t, ext.StatusFile(0), `[{"status":{"operation":"Enable","status":"success","code":0}}]`, 0o600)
	if st, err := ReadStatus(ext, 0); err != nil || st.Status != StatusSuccess {
		t.Fatalf("ReadStatus = %+v, %v", st, err)
	}
	writeTest(t, ext.StatusFile(1), `not json`, 0o600)
	if _, err := ReadStatus(ext, 1); !errcode.Is(err, CodeBadStatus) {
		t.Errorf("malformed status: %v, want %s", err, CodeBadStatus)
	}
	// A link is not followed, even to a valid status file.
	if err := os.Symlink(ext.StatusFile(0), ext.StatusFile(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatus(ext, 2); !errcode.Is(err, CodeBadStatus) {
		t.Errorf("linked status: %v, want %s", err, CodeBadStatus)
	}
	// A FIFO is refused without blocking; a huge file is refused.
	fifo := ext.StatusFile(3)
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatus(ext, 3); !errcode.Is(err, CodeBadStatus) {
		t.Errorf("FIFO status: %v, want %s", err, CodeBadStatus)
	}
	big := `[{"status":{"status":"success","formattedMessage":{"message":"` + strings.Repeat("a", StatusFileLimit) + `"}}}]`
	writeTest(t, ext.StatusFile(4), big, 0o600)
	if _, err := ReadStatus(ext, 4); !errcode.Is(err, CodeBadStatus) {
		t.Errorf("oversized status: %v, want %s", err, CodeBadStatus)
	}

}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(`[{"version":1.0,"timestampUTC":"2026-12-03T12:00:00Z","status":{"name":"x","operation":"Enable","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"ok"},"substatus":[{"name":"a","status":"error","code":"3","formattedMessage":{"message":"b"}}]}}]`))
	f.Add([]byte(`[{"status":{"status":"transitioning","code":"12"}}]`))
	f.Add([]byte("\ufeff[{\"status\":{\"status\":\"warning\",\"formattedMessage\":{\"message\":\"\xff\xfe\"}}}]"))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"status":null}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatus(data)
		if err != nil {
			return
		}
		switch st.Status {
		case StatusTransitioning, StatusSuccess, StatusWarning, StatusError:
		default:
			t.Fatalf("accepted status %q", st.Status)
		}
		if len(st.Message) > MaxStatusMessage || len(st.Substatus) > MaxSubstatus {
			t.Fatalf("unbounded result: message %d bytes, %d substatus", len(st.Message), len(st.Substatus))
		}
		for _, s := range st.Substatus {
			if len(s.Message) > MaxSubstatusMessage {
				t.Fatalf("substatus message of %d bytes", len(s.Message))
			}
		}
	})
}
