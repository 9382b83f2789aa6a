package daemon

import (
	"errors"
	"fmt"
	"os"
)

// FileStamp identifies a version of the file at path for change detection
// by the services' reload loops: inode, size and modification time, so an
// atomic replacement is seen even when size and time are equal. A missing
// file is "absent", one that cannot be examined "unreadable".
func FileStamp(path string) string {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "absent"
	}
	if err != nil {
		return "unreadable"
	}
	return fmt.Sprintf("%d/%d/%d", inode(fi), fi.Size(), fi.ModTime().UnixNano())
}
