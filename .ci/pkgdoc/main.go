// Command pkgdoc writes the documents the Debian package ships beside the
// binary, each generated so that it stays true:
//
//	copyright  /usr/share/doc/sitelink/copyright: machine-readable (DEP-5),
//	           sitelink's licence and the notices of every module linked
//	           into /usr/bin/sitelink (`go list -deps ./cmd/sitelink` for
//	           each packaged architecture), read from the module cache
//	changelog  the Debian changelog entry for the package's version
//	man        sitelink(1) in roff, from the built binary's own help
//	           (`sitelink help` and `sitelink CMD -h`)
//
// `make deb` runs it (go run ./.ci/pkgdoc ...) and gzips what needs it.
// Standard library only, and under .ci/ (which ./... skips): it adds
// nothing to the product's module graph. Output goes to -o FILE (default
// stdout).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pkgdoc copyright|changelog|man [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "copyright":
		err = cmdCopyright(args)
	case "changelog":
		err = cmdChangelog(args)
	case "man":
		err = cmdMan(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgdoc:", err)
		os.Exit(1)
	}
}

// output writes what fill produces to path (stdout for "" or "-"), and
// leaves no partial file behind when fill fails.
func output(path string, fill func(w io.Writer) error) error {
	if path == "" || path == "-" {
		w := bufio.NewWriter(os.Stdout)
		if err := fill(w); err != nil {
			return err
		}
		return w.Flush()
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// pkgInfo is what the package's metadata says once: name, maintainer,
// homepage and the short description, read from the nfpm config so the
// documents never disagree with the control file.
type pkgInfo struct {
	Name, Maintainer, Homepage, Summary string
	Description                         []string // the lines after the summary
}

// readNfpm reads the few top-level scalar keys pkgdoc needs from an nfpm
// YAML file (a line-based reading: the keys are plain `key: value` lines;
// the description is `|-` followed by its indented lines, the first of
// which is the summary).
func readNfpm(path string) (pkgInfo, error) {
	var p pkgInfo
	data, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		key, val, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "#") {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "name":
			p.Name = val
		case "maintainer":
			p.Maintainer = val
		case "homepage":
			p.Homepage = val
		case "description":
			if strings.HasPrefix(val, "|") || strings.HasPrefix(val, ">") {
				for j := i + 1; j < len(lines) && strings.HasPrefix(lines[j], " "); j++ {
					if p.Summary == "" {
						p.Summary = strings.TrimSpace(lines[j])
					} else {
						p.Description = append(p.Description, strings.TrimSpace(lines[j]))
					}
				}
			} else {
				p.Summary = val
			}
		}
	}
	if p.Name == "" || p.Maintainer == "" || p.Homepage == "" || p.Summary == "" {
		return p, fmt.Errorf("%s: want name, maintainer, homepage and description, got %+v", path, p)
	}
	return p, nil
}

// newFlags is a FlagSet for one pkgdoc command with the flags they share.
func newFlags(name string) (fs *flag.FlagSet, out, nfpm *string) {
	fs = flag.NewFlagSet("pkgdoc "+name, flag.ExitOnError)
	out = fs.String("o", "", "write to `file` (default: stdout)")
	nfpm = fs.String("nfpm", ".ci/nfpm.yaml", "nfpm `config` for the package's name, maintainer and homepage")
	return fs, out, nfpm
}
