package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/arcagent/arcagent/internal/saferead"
)

// Values of Status.Status, as the Azure format spells them.
const (
	StatusTransitioning = "transitioning"
	StatusSuccess       = "success"
	StatusWarning       = "warning"
	StatusError         = "error"
)

// Bounds of what ReadStatus keeps.
const (
	// StatusFileLimit bounds the status file read (a larger one is refused).
	StatusFileLimit = 1 << 20
	// MaxStatusMessage bounds Status.Message (1 KiB, as waagent shows).
	MaxStatusMessage = 1024
	// MaxSubstatusMessage bounds each Substatus.Message (10 KiB, as waagent).
	MaxSubstatusMessage = 10 << 10
	// MaxSubstatus bounds the number of substatus entries kept.
	MaxSubstatus = 64
	truncated    = " ... [TRUNCATED]"
)

// Status is status/<seq>.status as the handler wrote it.
type Status struct {
	Name      string // status.name (optional)
	Operation string
	Status    string // transitioning | success | warning | error (lower case)
	Code      int
	Message   string // formattedMessage.message, at most MaxStatusMessage bytes of valid UTF-8, not escaped (use safetext to print it)
	Substatus []Substatus
	Timestamp time.Time // timestampUTC; zero when absent or not a time
}

// Substatus is one element of status.substatus.
type Substatus struct {
	Name, Status, Message string
	Code                  int
}

type wireStatusFile []struct {
	Version      json.RawMessage `json:"version"`
	TimestampUTC string          `json:"timestampUTC"`
	Status       *struct {
		Name             string          `json:"name"`
		Operation        string          `json:"operation"`
		Status           string          `json:"status"`
		Code             json.RawMessage `json:"code"`
		FormattedMessage *wireMessage    `json:"formattedMessage"`
		Substatus        []struct {
			Name             string          `json:"name"`
			Status           string          `json:"status"`
			Code             json.RawMessage `json:"code"`
			FormattedMessage *wireMessage    `json:"formattedMessage"`
		} `json:"substatus"`
	} `json:"status"`
}

type wireMessage struct {
	Lang    string `json:"lang"`
	Message string `json:"message"`
}

// ReadStatus reads Dir/status/<seq>.status through internal/saferead (no
// link followed, regular file only, at most StatusFileLimit bytes) and
// parses it. An absent file is an error wrapping os.ErrNotExist (the
// handler has not written it yet); a malformed one is CodeBadStatus.
func ReadStatus(ext Extension, seq int) (*Status, error) {
	root, err := saferead.Open(ext.Dir)
	if err != nil {
		return nil, fmt.Errorf("open extension directory %s: %w", ext.Dir, err)
	}
	defer root.Close()
	name := path.Join(StatusDirName, strconv.Itoa(seq)+".status")
	data, err := root.ReadFile(name, StatusFileLimit)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("extension %s has not written %s yet: %w", ext.FullName(), ext.StatusFile(seq), err)
		}
		return nil, fail(CodeBadStatus, err, "read %s", ext.StatusFile(seq))
	}
	st, err := ParseStatus(data)
	if err != nil {
		return nil, fail(CodeBadStatus, err, "%s", ext.StatusFile(seq))
	}
	return st, nil
}

// ParseStatus parses the content of a status file: a JSON array whose
// first element holds "status" with a valid "status" value. Codes may be
// numbers or numeric strings (both occur in the wild); text is cut to the
// bounds above and invalid UTF-8 replaced.
func ParseStatus(data []byte) (*Status, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var w wireStatusFile
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("not a JSON array of status objects: %w", err)
	}
	if len(w) == 0 {
		return nil, errors.New("the status array is empty")
	}
	ws := w[0].Status
	if ws == nil {
		return nil, errors.New(`the status object has no "status"`)
	}
	st := &Status{
		Name:      clip(ws.Name, 256),
		Operation: clip(ws.Operation, 256),
		Status:    strings.ToLower(strings.TrimSpace(ws.Status)),
	}
	switch st.Status {
	case StatusTransitioning, StatusSuccess, StatusWarning, StatusError:
	default:
		return nil, fmt.Errorf("status.status is %q, want transitioning, success, warning or error", clip(ws.Status, 64))
	}
	var err error
	if st.Code, err = parseCode(ws.Code); err != nil {
		return nil, fmt.Errorf("status.code: %w", err)
	}
	if ws.FormattedMessage != nil {
		st.Message = clip(ws.FormattedMessage.Message, MaxStatusMessage)
	}
	if ts := strings.TrimSpace(w[0].TimestampUTC); ts != "" {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, ts); err == nil {
				st.Timestamp = t.UTC()
				break
			}
		}
	}
	for i, ss := range ws.Substatus {
		if i == MaxSubstatus {
			break
		}
		s := Substatus{Name: clip(ss.Name, 256), Status: strings.ToLower(clip(strings.TrimSpace(ss.Status), 64))}
		if s.Code, err = parseCode(ss.Code); err != nil {
			return nil, fmt.Errorf("status.substatus[%d].code: %w", i, err)
		}
		if ss.FormattedMessage != nil {
			s.Message = clip(ss.FormattedMessage.Message, MaxSubstatusMessage)
		}
		st.Substatus = append(st.Substatus, s)
	}
	return st, nil
}

// parseCode accepts an absent code (0), a JSON integer or a string holding
// one.
func parseCode(raw json.RawMessage) (int, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return 0, nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", clip(s, 32))
	}
	return int(n), nil
}

// clip makes s valid UTF-8 and at most n bytes (with a marker when cut).
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len(truncated)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncated
}
