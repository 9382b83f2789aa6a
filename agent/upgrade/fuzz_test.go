package upgrade

import (
	"testing"

	"github.com/arcagent/arcagent/signing"
)

// FuzzPick feeds catalog documents (after ParseCatalog, as VerifyCatalog
// gives them) to the package choice: it never panics, and whatever it
// picks is an installable package of the architecture asked for, whose
// version can name a file in the cache.
func FuzzPick(f *testing.F) {
	for _, seed := range []string{
		`{"name":"releases","version":1,"expires":"2030-01-01T00:00:00Z","entries":[{"name":"arcagent","version":"1.2.0","url":"https://x/a.deb","sha256":"` + zeros + `","size":10,"annotations":{"arch":"amd64"}}]}`,
		`{"name":"releases","version":2,"expires":"2030-01-01T00:00:00Z","entries":[{"name":"arcagent","version":"1.2.0~rc.1","url":"/a.deb","sha256":"` + zeros + `","size":1,"annotations":{"arch":"amd64","prerelease":"true"}},{"name":"arcagent","version":"../../etc","url":"/b","sha256":"` + zeros + `","size":1,"annotations":{"arch":"amd64"}}]}`,
		`{"name":"releases","version":3,"expires":"2030-01-01T00:00:00Z","entries":[{"name":"Contoso.X","version":"1.0"},{"name":"arcagent","version":"2","annotations":{"arch":"arm64"}}]}`,
	} {
		f.Add([]byte(seed), "")
		f.Add([]byte(seed), "1.2.0")
	}
	f.Fuzz(func(t *testing.T, data []byte, want string) {
		cat, err := signing.ParseCatalog(data)
		if err != nil {
			return
		}
		e, err := pick(cat, "amd64", want)
		if err != nil {
			return
		}
		if e.Annotations[ArchAnnotation] != "amd64" || e.URL == "" || e.SHA256 == "" || e.Size <= 0 {
			t.Fatalf("picked an entry that is not an amd64 package: %+v", e)
		}
		if name, err := packageName(e.Version, "amd64"); err == nil && (len(name) == 0 || name[0] == '.' || containsSlash(name)) {
			t.Fatalf("package file name %q from version %q", name, e.Version)
		}
	})
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

func containsSlash(s string) bool {
	for _, c := range s {
		if c == '/' {
			return true
		}
	}
	return false
}
