package main

import (
	"fmt"
	"io"
	"regexp"
)

// debVersion is what dpkg accepts as a version (epoch, upstream, revision).
var debVersion = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$`)

// cmdChangelog writes the package's Debian changelog: one entry for the
// version being built, dated SOURCE_DATE_EPOCH (the Makefile sets it to
// the commit's time, so the same commit makes the same file). What
// changed is told by the project's history, not repeated here.
func cmdChangelog(args []string) error {
	fs, out, nfpm := newFlags("changelog")
	version := fs.String("version", "", "the package's Debian `version`")
	upstream := fs.String("upstream", "", "the `version` the binary reports (git describe)")
	distribution := fs.String("distribution", "unstable", "the entry's `distribution`")
	fs.Parse(args)
	info, err := readNfpm(*nfpm)
	if err != nil {
		return err
	}
	if !debVersion.MatchString(*version) {
		return fmt.Errorf("-version %q is not a Debian version", *version)
	}
	if *upstream == "" {
		*upstream = *version
	}
	return output(*out, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, `%s (%s) %s; urgency=medium

  * sitelink %s, packaged by make deb. The changes are in the
    project's history (%s).

 -- %s  %s
`, info.Name, *version, *distribution, *upstream, info.Homepage, info.Maintainer,
			buildTime().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
		return err
	})
}
