package controlplane

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// checkName validates a resource group or machine name: 1 to max
// characters of letters, digits, '.', '-', '_', starting with a letter or
// digit.
func checkName(field, v string, max int) error {
	if v == "" {
		return errf(apiv1.CodeBadRequest, "%s is required", field)
	}
	if len(v) > max {
		return errf(apiv1.CodeBadRequest, "%s is %d characters long; at most %d are allowed", field, len(v), max)
	}
	for i, r := range v {
		ok := r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || (i > 0 && strings.ContainsRune(".-_", r)))
		if !ok {
			return errf(apiv1.CodeBadRequest, "%s %q may hold only letters, digits, '.', '-' and '_', and must start with a letter or digit", field, v)
		}
	}
	return nil
}

// checkText validates free text: printable, at most max bytes.
func checkText(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return errf(apiv1.CodeBadRequest, "%s is required", field)
	}
	if len(v) > max {
		return errf(apiv1.CodeBadRequest, "%s is %d bytes long; at most %d are allowed", field, len(v), max)
	}
	if !printable(v) {
		return errf(apiv1.CodeBadRequest, "%s must be printable text without control characters", field)
	}
	return nil
}

// maxStatusMessage bounds a message in a status report (a handler's
// formatted message, say).
const maxStatusMessage = 4096

// checkMessage validates a reported message: at most max bytes of
// printable text, where line breaks and tabs are allowed.
func checkMessage(field, v string, max int) error {
	if len(v) > max {
		return errf(apiv1.CodeBadRequest, "%s is %d bytes long; at most %d are allowed", field, len(v), max)
	}
	if !printable(strings.NewReplacer("\n", "", "\t", "", "\r", "").Replace(v)) {
		return errf(apiv1.CodeBadRequest, "%s must be printable text (line breaks and tabs allowed)", field)
	}
	return nil
}

// checkPrincipal validates a principal name.
func checkPrincipal(v string) error {
	if v == "" {
		return errf(apiv1.CodeBadRequest, "principal is required")
	}
	if len(v) > 128 {
		return errf(apiv1.CodeBadRequest, "principal is %d characters long; at most 128 are allowed", len(v))
	}
	for _, r := range v {
		if !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-_@", r))) {
			return errf(apiv1.CodeBadRequest, "principal %q may hold only letters, digits, '.', '-', '_' and '@'", v)
		}
	}
	return nil
}

func checkTags(t apiv1.Tags) error {
	if len(t) > 50 {
		return errf(apiv1.CodeBadRequest, "%d tags given; at most 50 are allowed", len(t))
	}
	for k, v := range t {
		if k == "" || len(k) > 128 || !printable(k) || strings.ContainsAny(k, "<>%&\\?/") {
			return errf(apiv1.CodeBadRequest, "tag name %q must be 1 to 128 printable characters without <>%%&\\?/", k)
		}
		if len(v) > 256 || !printable(v) {
			return errf(apiv1.CodeBadRequest, "the value of tag %q must be at most 256 printable characters", k)
		}
	}
	return nil
}

// parseDuration accepts Go durations ("90m", "1h30m") and whole days ("7d").
func parseDuration(field, v string, min, max time.Duration) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(v, "d"); ok && n != "" {
		var days int
		days, err = strconv.Atoi(n)
		if err == nil && days > 0 && days <= 100000 {
			d = time.Duration(days) * 24 * time.Hour
		} else if err == nil {
			err = fmt.Errorf("out of range")
		}
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil {
		return 0, errf(apiv1.CodeBadRequest, "%s %q is not a duration: use e.g. 30m, 1h, 7d", field, v)
	}
	if d < min || d > max {
		return 0, errf(apiv1.CodeBadRequest, "%s must be between %s and %s, not %s", field, min, max, d)
	}
	return d, nil
}

// checkResource validates the resource (audience) of a token request.
func checkResource(v string) error {
	if v == "" {
		return errf(apiv1.CodeBadRequest, "the resource query parameter is required: the audience of the token, e.g. https://vault.example.com")
	}
	if len(v) > 512 {
		return errf(apiv1.CodeBadRequest, "resource is %d bytes long; at most 512 are allowed", len(v))
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f || !unicode.IsPrint(r) {
			return errf(apiv1.CodeBadRequest, "resource must not contain spaces or control characters")
		}
	}
	return nil
}
