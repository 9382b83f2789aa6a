package handler

// DefaultCgroupRoot is where the cgroup hierarchies are mounted.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// SliceName is the cgroup, at the top of a hierarchy, under which every
// extension gets its own child.
const SliceName = "arcagent.slice"
