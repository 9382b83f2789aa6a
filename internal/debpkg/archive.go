package debpkg

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/blakesmith/ar"
	"github.com/ulikunitz/xz"
)

// baseDirs are directories base-files' postinst creates on every Debian
// system without listing them as its own. nfpm puts every parent
// directory in the archive; a package that lists these makes dpkg remove
// them on purge when they are empty (after postrm, so a script cannot put
// them back). They are dropped from the archive: they are always there to
// unpack into.
var baseDirs = []string{"/opt", "/var/opt"}

// finishDeb rewrites the .deb nfpm wrote with an uncompressed data.tar:
// the baseDirs entries are dropped and data.tar is compressed with xz.
// The other members are copied as they are.
func finishDeb(raw []byte, w io.Writer) error {
	rd := ar.NewReader(bytes.NewReader(raw))
	aw := ar.NewWriter(w)
	if err := aw.WriteGlobalHeader(); err != nil {
		return fmt.Errorf("write the package: %w", err)
	}
	sawData := false
	for {
		hdr, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the package nfpm wrote: %w", err)
		}
		body, err := io.ReadAll(rd)
		if err != nil {
			return fmt.Errorf("read the package nfpm wrote: %w", err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "data.tar" {
			sawData = true
			if body, err = dataTarXZ(body); err != nil {
				return err
			}
			name = "data.tar.xz"
		}
		out := *hdr
		out.Name, out.Size = name, int64(len(body))
		if err := aw.WriteHeader(&out); err != nil {
			return fmt.Errorf("write the package: %w", err)
		}
		if _, err := aw.Write(body); err != nil {
			return fmt.Errorf("write the package: %w", err)
		}
	}
	if !sawData {
		return errors.New("the package nfpm wrote has no data.tar member: internal/debpkg expects deb compression none")
	}
	return nil
}

// dataTarXZ drops the baseDirs entries of a data.tar and compresses it.
func dataTarXZ(data []byte) ([]byte, error) {
	var out bytes.Buffer
	xw, err := xz.NewWriter(&out)
	if err != nil {
		return nil, fmt.Errorf("compress data.tar: %w", err)
	}
	tr := tar.NewReader(bytes.NewReader(data))
	tw := tar.NewWriter(xw)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read data.tar: %w", err)
		}
		p := "/" + strings.Trim(strings.TrimPrefix(hdr.Name, "."), "/")
		if hdr.Typeflag == tar.TypeDir && slices.Contains(baseDirs, p) {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write data.tar: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, fmt.Errorf("write data.tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write data.tar: %w", err)
	}
	if err := xw.Close(); err != nil {
		return nil, fmt.Errorf("compress data.tar: %w", err)
	}
	return out.Bytes(), nil
}
