package signing

import (
	"io/fs"

	"github.com/arcagent/arcagent/errcode"
)

// checkTrustOwner: a Windows trust store would be judged by its owner SID
// and ACL, which is not implemented yet; it is refused rather than trusted
// on a guess.
func checkTrustOwner(p string, _ fs.FileInfo, _ bool, _ *trustConfig) error {
	return errcode.Unsupported("the trust store " + p + " (its owner and ACL are not checked on Windows yet)")
}
