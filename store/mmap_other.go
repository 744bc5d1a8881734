//go:build !linux

package store

// mmapFlags: MAP_POPULATE is Linux's; elsewhere bbolt faults the pages
// in as it reads them.
const mmapFlags = 0
