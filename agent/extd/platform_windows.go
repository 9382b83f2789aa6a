package extd

import "io/fs"

// inode: os.Stat on Windows gives no file index; size and mtime tell a
// change.
func inode(fs.FileInfo) uint64 { return 0 }

// alive: extd does not run on Windows, so no recorded pid is its.
func alive(int) bool { return false }
