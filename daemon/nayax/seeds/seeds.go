package seeds

import (
	"embed"
	"io/fs"
	"slices"
)

//go:embed *.json
var files embed.FS

// Get returns a copy of the seed file called name (for example
// "000_stopcallback_request.json"). It panics if there is no such seed.
func Get(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("seeds: unknown seed " + name)
	}
	return slices.Clone(b)
}

// Names lists the seed file names in lexical order.
func Names() []string {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		panic("seeds: " + err.Error())
	}
	return names
}
