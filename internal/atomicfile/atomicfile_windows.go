package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
)

// fileOwner: Windows files have an owner SID and an ACL, not numeric ids;
// the replacing file inherits the directory's ACL, as the agent's
// directories prescribe.
func fileOwner(fs.FileInfo) (uid, gid int, ok bool) { return -1, -1, false }

// SyncDir checks that dir is still there. Windows has no fsync of a
// directory (FlushFileBuffers refuses directory handles); NTFS journals
// the rename (MoveFileEx with MOVEFILE_REPLACE_EXISTING, which os.Rename
// uses) itself.
func SyncDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("sync directory %s: it is not a directory", dir)
	}
	return nil
}
