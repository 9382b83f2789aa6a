//go:build !windows

package audit

import (
	"bytes"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// refSecretPatterns are the case-insensitive patterns the scan used before
// the literal prefilter: findSecrets must find exactly what they find.
var refSecretPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"onboarding-token", regexp.MustCompile(`(?i)--onboarding-token[= ]+["']?[A-Za-z0-9._~+/=-]{8,}`)},
	{"onboarding-token", regexp.MustCompile(`(?i)["']?onboarding[-_]?token["']?\s*[:=]\s*["']?[A-Za-z0-9._~+/=-]{8,}`)},
	{"service-principal-secret", regexp.MustCompile(`(?i)--service-principal-secret[= ]+["']?\S{8,}`)},
	{"service-principal-secret", regexp.MustCompile(`(?i)["']?service[-_]?principal[-_]?secret["']?\s*[:=]\s*["']?[^\s"']{8,}`)},
	{"access-token", regexp.MustCompile(`(?i)(azcmagent|arcagent)\s+connect\b.*--access-token[= ]+["']?\S{8,}`)},
}

func refFindSecrets(data []byte) []SecretFact {
	var out []SecretFact
	seen := map[string]bool{}
	for i, text := range bytes.Split(data, []byte("\n")) {
		for _, p := range refSecretPatterns {
			if !seen[p.kind] && p.re.Match(text) {
				seen[p.kind] = true
				out = append(out, SecretFact{Line: i + 1, Kind: p.kind})
			}
		}
	}
	return out
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzFindSecrets checks the prefiltered scan against the plain one
// (ASCII input: the scan lowers ASCII only, by design).
func FuzzFindSecrets(f *testing.F) {
	for _, s := range []string{
		"{\n  \"onboarding-token\": \"ot_3f9a8c7d6e5b4a39\"\n}\n",
		"ls\nazcmagent connect --service-principal-id x --service-principal-secret 'S3cr3t~value'\n",
		"remember to pass --onboarding-token when connecting\n",
		"ARCAGENT CONNECT --ACCESS-TOKEN eyJ0eXAiOiJKV1Qi\nOnboarding_Token = abcdefghij\n",
		"service_principal_secret: x\nservicePrincipalSecret=\"12345678\"\nprincipal\nonboarding\n--access-token",
		"onboarding\n\n\nprincipal secret\nonboardingtoken:=aaaaaaaa",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !isASCII(data) {
			return
		}
		got, _ := findSecretsFrom(asciiLower(nil, data), 1, nil, nil)
		want := refFindSecrets(data)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("findSecrets = %+v, want %+v", got, want)
		}
		// Chunks of a few bytes cut lines everywhere they can.
		for _, chunk := range []int{1, 7, 64} {
			if got, _ := findSecretsChunked(data, chunk, nil); !reflect.DeepEqual(got, want) {
				t.Fatalf("findSecretsChunked(%d) = %+v, want %+v", chunk, got, want)
			}
		}
	})
}

// refParseProcNetTCP is the line-splitting parser the state-first one
// replaced.
func refParseProcNetTCP(b []byte) []Listener {
	var out []Listener
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 8 || f[3] != "0A" {
			continue
		}
		hostHex, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		ip := decodeProcIP(hostHex)
		if ip == nil {
			continue
		}
		uid, _ := strconv.Atoi(f[7])
		out = append(out, Listener{Address: ip.String(), Port: int(port), Loopback: ip.IsLoopback(), UID: uid})
	}
	return out
}

func FuzzParseProcNetTCP(f *testing.F) {
	f.Add([]byte("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:9CD6 00000000:0000 0A 00000000:00000000 00:00000000 00000000  5001        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:0016 0100007F:D0F2 06 00000000:00000000 00:00000000 00000000     0        0 3 1\n"))
	f.Add([]byte("h\n   0: 00000000000000000000000001000000:9CD6 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  5001        0 4 1"))
	f.Add([]byte("h\n0: a:b c 0A d e f g\n\t0:\t0100007F:0016\tx\t0A\r\n"))
	f.Add([]byte("no header only"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !isASCII(data) {
			return
		}
		got, want := parseProcNetTCP(data), refParseProcNetTCP(data)
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseProcNetTCP = %+v, want %+v", got, want)
		}
	})
}

// FuzzParseInetDiag feeds arbitrary datagrams to the sock_diag decoder: it
// must not panic, and what it returns are listeners with a port.
func FuzzParseInetDiag(f *testing.F) {
	msg := make([]byte, 16+72)
	msg[0], msg[4], msg[16], msg[17] = 16+72, 20, 2, 10 // len, SOCK_DIAG_BY_FAMILY, AF_INET, LISTEN
	msg[20], msg[21], msg[24], msg[27] = 0x9c, 0xd6, 127, 1
	f.Add(msg)
	f.Add(append(append([]byte{}, msg...), 16, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)) // then NLMSG_DONE
	f.Add([]byte{20, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff})   // NLMSG_ERROR
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, _, _ := parseInetDiag(b)
		for _, l := range ls {
			if l.Address == "" {
				t.Fatalf("a listener without an address: %+v", l)
			}
		}
	})
}
