//go:build !(unix && !aix) && !windows

package homelock

import "os"

// lock takes no lock where the system has no advisory file locks Go
// reaches (AIX, Plan 9, WebAssembly): the directory is not protected there.
func lock(*os.File) error { return nil }
