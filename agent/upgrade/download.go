package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/releases"
	"github.com/arcagent/arcagent/signing"
)

// downloader fetches packages into the root-only cache dir. Only files
// whose size and SHA-256 matched a signed entry are ever renamed into
// their final name there, so a cached file is a verified one.
type downloader struct {
	client *http.Client
	dir    string
}

// safeVersion keeps a version usable in a file name.
var safeVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+~-]*$`)

func packageName(version, arch string) (string, error) {
	if !safeVersion.MatchString(version) || !safeVersion.MatchString(arch) {
		return "", errcode.New(CodeNoPackage, "version %q or architecture %q cannot name a package file", version, arch)
	}
	return "arcagent_" + version + "_" + arch + ".deb", nil
}

// fetch returns the verified package of e in the cache, downloading it
// when it is not there yet.
func (d downloader) fetch(ctx context.Context, e signing.CatalogEntry, arch string) (string, error) {
	name, err := packageName(e.Version, arch)
	if err != nil {
		return "", err
	}
	if e.Size <= 0 || e.Size > MaxPackage {
		return "", errcode.New(CodeNoPackage, "catalog entry arcagent %s (%s) has size %d: it must be 1 to %d bytes", e.Version, arch, e.Size, MaxPackage)
	}
	final := filepath.Join(d.dir, name)
	if err := verifyFile(final, e); err == nil {
		return final, nil
	}
	src, err := d.open(ctx, e.URL)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(d.dir, ".download-*")
	if err != nil {
		return "", errcode.Wrap(CodeDownload, err, "create a file in %s", d.dir)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(src, e.Size+1))
	if err != nil {
		return "", errcode.Wrap(CodeDownload, err, "download %s", e.URL)
	}
	if n != e.Size {
		return "", errcode.New(CodeTampered, "%s is %s bytes, the signed catalog says %d: refused, nothing was installed", e.URL, sizeText(n, e.Size), e.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, e.SHA256) {
		return "", errcode.New(CodeTampered, "%s has SHA-256 %s, the signed catalog says %s: refused, nothing was installed", e.URL, got, strings.ToLower(e.SHA256))
	}
	if err := tmp.Chmod(0o600); err != nil {
		return "", errcode.Wrap(CodeDownload, err, "chmod %s", tmp.Name())
	}
	if err := tmp.Sync(); err != nil {
		return "", errcode.Wrap(CodeDownload, err, "write %s", tmp.Name())
	}
	if err := tmp.Close(); err != nil {
		return "", errcode.Wrap(CodeDownload, err, "write %s", tmp.Name())
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", errcode.Wrap(CodeDownload, err, "keep %s", final)
	}
	return final, nil
}

func sizeText(n, want int64) string {
	if n > want {
		return fmt.Sprintf("more than %d", want)
	}
	return fmt.Sprint(n)
}

// previous returns a package of the installed version to roll back to: the
// one kept in the cache by an earlier upgrade (verified against the catalog
// when it lists that version), else the catalog's, downloaded and verified.
func (d downloader) previous(ctx context.Context, cat *signing.Catalog, arch, installed string) (string, error) {
	name, err := packageName(installed, arch)
	if err != nil {
		return "", errcode.Wrap(CodeNoRollback, err, "installed version")
	}
	cached := filepath.Join(d.dir, name)
	iv, _ := parseVersion(installed)
	for _, e := range cat.Entries {
		if releases.ProductName(e.Name) != Product || e.Annotations[ArchAnnotation] != arch {
			continue
		}
		if v, err := parseVersion(e.Version); err != nil || v.Compare(iv) != 0 || e.URL == "" || e.SHA256 == "" {
			continue
		}
		p, err := d.fetch(ctx, e, arch)
		if err != nil {
			return "", errcode.Wrap(CodeNoRollback, err, "the package of the installed version %s", installed)
		}
		return p, nil
	}
	if fi, err := os.Lstat(cached); err == nil && fi.Mode().IsRegular() {
		return cached, nil
	}
	return "", errcode.New(CodeNoRollback, "neither the catalog nor %s has a package of the installed version %s", d.dir, installed)
}

// open opens a package location: an https:// URL, a file:// URL or an
// absolute path.
func (d downloader) open(ctx context.Context, loc string) (io.ReadCloser, error) {
	if strings.HasPrefix(loc, "/") {
		return openFile(loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, errcode.Wrap(CodeDownload, err, "package URL %q", loc)
	}
	switch u.Scheme {
	case "file":
		return openFile(u.Path)
	case "https":
	default:
		return nil, errcode.New(CodeDownload, "package URL %q: only https://, file:// and absolute paths are accepted", loc)
	}
	hc := d.client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, errcode.Wrap(CodeDownload, err, "package URL %q", loc)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, errcode.Wrap(CodeDownload, err, "download %s", loc)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errcode.New(CodeDownload, "download %s: the server answered %s", loc, resp.Status)
	}
	return resp.Body, nil
}

func openFile(p string) (io.ReadCloser, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return nil, errcode.Wrap(CodeDownload, err, "open the package")
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, errcode.New(CodeDownload, "package %s is not a regular file", p)
	}
	return f, nil
}

// verifyFile checks a cached file against its entry.
func verifyFile(p string, e signing.CatalogEntry) error {
	f, err := os.OpenFile(p, os.O_RDONLY|openNoFollow|openNonBlock, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() != e.Size {
		return errors.New("size differs")
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, e.Size+1)); err != nil {
		return err
	}
	if !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), e.SHA256) {
		return errors.New("sha256 differs")
	}
	return nil
}

// prune removes the cached packages other than keep.
func prune(dir string, keep ...string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range ents {
		p := filepath.Join(dir, de.Name())
		if !de.Type().IsRegular() || !strings.HasSuffix(de.Name(), ".deb") {
			continue
		}
		kept := false
		for _, k := range keep {
			kept = kept || (k != "" && filepath.Clean(k) == p)
		}
		if !kept {
			os.Remove(p)
		}
	}
}
