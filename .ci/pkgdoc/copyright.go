package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The copyright file lists what /usr/bin/sitelink is made of: sitelink's
// own code, the Go standard library and runtime, and each module that
// `go list -deps` links into the command on a packaged platform (test and
// tool dependencies in go.mod's graph never reach the binary and are left
// out). Each module's licence is recognised from its licence files in the
// module cache; one that is not recognised as permissive fails the build,
// so a new dependency's licence is looked at before it ships.

const apacheCommon = "/usr/share/common-licenses/Apache-2.0"

// licence is one licence pkgdoc recognises: its DEP-5 name, the phrases
// (whitespace-collapsed) all of which its text holds, and a note for the
// copyright file when the choice needs one.
type licence struct {
	name    string
	phrases []string
	note    string
}

// licences in the order they are tried: the combinations first. All are
// permissive and compatible with Apache-2.0 for a binary distribution.
var licences = []licence{
	{
		name:    "EPL-2.0 or BSD-3-clause",
		phrases: []string{"Eclipse Public License", "Eclipse Distribution License"},
		note: "Dual-licensed: the Eclipse Public License 2.0 or the Eclipse Distribution\n" +
			"License 1.0 (a BSD-3-clause licence, text below the EPL). sitelink\n" +
			"(Apache-2.0) is distributed with it under the Eclipse Distribution License.",
	},
	{
		name:    "Expat and Apache-2.0",
		phrases: []string{"Permission is hereby granted, free of charge", "Apache License, Version 2.0"},
		note:    "Some files under the MIT (Expat) licence, the rest under Apache-2.0 (" + apacheCommon + ").",
	},
	{name: "Apache-2.0", phrases: []string{"Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"}},
	{name: "Expat", phrases: []string{"Permission is hereby granted, free of charge", "THE SOFTWARE IS PROVIDED \"AS IS\""}},
	{name: "BSD-3-clause", phrases: []string{"Redistribution and use in source and binary forms", "Neither the name"}},
	{name: "BSD-2-clause", phrases: []string{"Redistribution and use in source and binary forms", "Redistributions in binary form must reproduce"}},
	{name: "ISC", phrases: []string{"Permission to use, copy, modify, and/or distribute this software for any purpose"}},
}

// copyleft marks texts that need a person's reading even when a permissive
// licence matched too (a dual or mixed licence pkgdoc does not know).
var copyleft = []string{"GNU General Public License", "GNU Lesser General Public License", "GNU Affero", "Mozilla Public License"}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// classify names the licence of a module from its licence files' text.
func classify(text string) (licence, error) {
	t := collapse(text)
	for _, l := range licences {
		ok := true
		for _, p := range l.phrases {
			if !strings.Contains(t, collapse(p)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if !strings.HasPrefix(l.name, "EPL-2.0") {
			for _, c := range copyleft {
				if strings.Contains(t, c) {
					return licence{}, fmt.Errorf("%s matched, but the text also names the %s", l.name, c)
				}
			}
		}
		return l, nil
	}
	return licence{}, fmt.Errorf("licence not recognised as one of the permissive licences pkgdoc knows")
}

// licenceFile matches the files that carry a module's licence and notices;
// edl-v10 is the Eclipse Distribution License beside an EPL LICENSE.
var licenceFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents|edl-v10)([._-].*)?$`)

// noticeFile are the ones passed on as notices rather than licence text.
var noticeFile = regexp.MustCompile(`(?i)^(notice|patents)([._-].*)?$`)

// unit is one paragraph's worth: a module, the standard library, or
// several modules with identical licence text and notices.
type unit struct {
	names   []string // module paths ("" for the standard library)
	labels  []string // "PATH VERSION", for the comment
	lic     licence
	text    string // licence text (empty for plain Apache-2.0: the common licence)
	notices string
	holders *holders
}

func cmdCopyright(args []string) error {
	fs, out, nfpm := newFlags("copyright")
	pkg := fs.String("pkg", "./cmd/sitelink", "the command `package` the binary is built from")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64,linux/arm", "comma-separated GOOS/GOARCH the binary is packaged for")
	holder := fs.String("holder", "The sitelink authors", "copyright `holder` of sitelink's own code")
	fs.Parse(args)
	info, err := readNfpm(*nfpm)
	if err != nil {
		return err
	}
	mods, err := linkedModules(*pkg, strings.Split(*platforms, ","))
	if err != nil {
		return err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return err
	}
	goversion, err := goEnv("GOVERSION")
	if err != nil {
		return err
	}
	std := &module{Path: "", Version: goversion, Dir: goroot}
	units, err := makeUnits(append([]*module{std}, mods...))
	if err != nil {
		return err
	}
	return output(*out, func(w io.Writer) error {
		return writeCopyright(w, info, *pkg, *platforms, projectYears()+" "+*holder, units)
	})
}

// module is a Go module linked into the binary, with the Go files of it
// that are (on some packaged platform).
type module struct {
	Path, Version, Dir string
	files              map[string]bool
}

// linkedModules lists the non-main modules `go list -deps` finds for pkg
// on each platform, sorted by path.
func linkedModules(pkg string, platforms []string) ([]*module, error) {
	byPath := map[string]*module{}
	for _, p := range platforms {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok {
			return nil, fmt.Errorf("platform %q: want GOOS/GOARCH", p)
		}
		cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles,Module", pkg)
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		cmd.Stderr = os.Stderr
		data, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list -deps %s (%s): %w", pkg, p, err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		for dec.More() {
			var lp struct {
				ImportPath, Dir string
				GoFiles         []string
				Module          *struct {
					Path, Version, Dir string
					Main               bool
					Replace            *struct{ Path, Version, Dir string }
				}
			}
			if err := dec.Decode(&lp); err != nil {
				return nil, fmt.Errorf("go list output: %w", err)
			}
			m := lp.Module
			if m == nil || m.Main {
				continue // the standard library, or sitelink itself
			}
			if m.Replace != nil {
				m.Version, m.Dir = m.Replace.Version, m.Replace.Dir
				if m.Replace.Version == "" {
					m.Version = "(replaced by " + m.Replace.Path + ")"
				}
			}
			if m.Dir == "" {
				return nil, fmt.Errorf("module %s %s is not in the module cache (go mod download)", m.Path, m.Version)
			}
			mod := byPath[m.Path]
			if mod == nil {
				mod = &module{Path: m.Path, Version: m.Version, Dir: m.Dir, files: map[string]bool{}}
				byPath[m.Path] = mod
			}
			for _, f := range lp.GoFiles {
				mod.files[filepath.Join(lp.Dir, f)] = true
			}
		}
	}
	mods := make([]*module, 0, len(byPath))
	for _, m := range byPath {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, nil
}

func goEnv(key string) (string, error) {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// makeUnits reads each module's licence files and merges modules whose
// licence text and notices are the same (golang.org/x/... and the
// standard library share Go's).
func makeUnits(mods []*module) ([]*unit, error) {
	var units []*unit
	key := map[string]*unit{}
	for _, m := range mods {
		name := m.Path
		if name == "" {
			name = "the Go standard library"
		}
		text, notices, err := licenceFiles(m.Dir)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", name, m.Version, err)
		}
		lic, err := classify(text)
		if err != nil {
			return nil, fmt.Errorf("%s %s (%s): %w; read its licence and teach .ci/pkgdoc/copyright.go if it may ship", name, m.Version, m.Dir, err)
		}
		h := newHolders()
		h.scan(text + "\n" + notices)
		files := make([]string, 0, len(m.files))
		for f := range m.files {
			files = append(files, f)
		}
		sort.Strings(files)
		for _, f := range files {
			if err := h.scanGoHeader(f); err != nil {
				return nil, err
			}
		}
		if lic.name == "Apache-2.0" {
			text = "" // the common licence, see the Apache-2.0 paragraph
		}
		k := lic.name + "\x00" + text + "\x00" + notices
		u := key[k]
		if u == nil {
			u = &unit{lic: lic, text: text, notices: notices, holders: newHolders()}
			key[k] = u
			units = append(units, u)
		}
		u.names = append(u.names, m.Path)
		u.labels = append(u.labels, strings.TrimSpace(m.Path+" "+m.Version))
		u.holders.merge(h)
	}
	return units, nil
}

// licenceFiles reads a module's licence files (text) and notice files
// (NOTICE, PATENTS), each group in name order.
func licenceFiles(dir string) (text, notices string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", "", err
	}
	var texts, notes []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !licenceFile.MatchString(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", "", err
		}
		s := strings.TrimSpace(strings.ReplaceAll(string(data), "\r\n", "\n"))
		if noticeFile.MatchString(e.Name()) {
			notes = append(notes, s)
		} else {
			texts = append(texts, s)
		}
	}
	if len(texts) == 0 {
		return "", "", fmt.Errorf("no LICENSE, LICENCE or COPYING file in %s", dir)
	}
	return strings.Join(texts, "\n\n"), strings.Join(notes, "\n\n"), nil
}

// holders collects copyright statements by holder, with the years seen.
type holders struct {
	order []string // lower-cased keys in first-seen order
	name  map[string]string
	years map[string][]int
}

func newHolders() *holders {
	return &holders{name: map[string]string{}, years: map[string][]int{}}
}

// copyrightLine matches "Copyright (c) 2014-2026, Someone. All rights
// reserved." and the like: the years, then the holder.
var copyrightLine = regexp.MustCompile(`(?i)\bcopyright\s*(?:\(c\)|©)?\s*((?:\d{4})(?:\s*(?:-|–|,|and)?\s*\d{4})*)[\s,.:]+(.+)`)
var yearRE = regexp.MustCompile(`\d{4}`)
var rightsReserved = regexp.MustCompile(`(?i)\s*all rights reserved\.?`)

// nextSentence is where a header line goes on with another sentence
// ("... Authors.  Use of this source code ...").
var nextSentence = regexp.MustCompile(`\.\s+[A-Z].*$`)

func (h *holders) add(line string) {
	m := copyrightLine.FindStringSubmatch(line)
	if m == nil {
		return
	}
	who := strings.TrimSuffix(strings.TrimSpace(m[2]), "*/")
	who = rightsReserved.ReplaceAllString(who, "")
	who = nextSentence.ReplaceAllString(who, "")
	who = strings.TrimRight(strings.TrimSpace(who), ".,; ")
	if who == "" || strings.ContainsAny(who, "[]{}<>") && !strings.Contains(who, "@") {
		return // a template ("[name of copyright owner]")
	}
	k := strings.ToLower(who)
	if _, ok := h.name[k]; !ok {
		h.order = append(h.order, k)
		h.name[k] = who
	}
	for _, y := range yearRE.FindAllString(m[1], -1) {
		n, _ := strconv.Atoi(y)
		h.years[k] = append(h.years[k], n)
	}
}

func (h *holders) scan(text string) {
	for _, line := range strings.Split(text, "\n") {
		h.add(line)
	}
}

// scanGoHeader reads the copyright lines of a Go file's header: the
// comments before its package clause.
func (h *holders) scanGoHeader(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "package ") {
			break
		}
		h.add(line)
	}
	return nil
}

func (h *holders) merge(o *holders) {
	for _, k := range o.order {
		if _, ok := h.name[k]; !ok {
			h.order = append(h.order, k)
			h.name[k] = o.name[k]
		}
		h.years[k] = append(h.years[k], o.years[k]...)
	}
}

// lines renders "2009-2024 The Go Authors", one per holder, in the order
// first seen.
func (h *holders) lines() []string {
	var out []string
	for _, k := range h.order {
		ys := h.years[k]
		sort.Ints(ys)
		span := strconv.Itoa(ys[0])
		if last := ys[len(ys)-1]; last != ys[0] {
			span += "-" + strconv.Itoa(last)
		}
		out = append(out, span+" "+h.name[k])
	}
	return out
}

// projectYears is the span of years of sitelink's git history (the
// SOURCE_DATE_EPOCH year, or this year, outside a git checkout).
func projectYears() string {
	out, err := exec.Command("git", "log", "--format=%ad", "--date=format:%Y").Output()
	var ys []int
	if err == nil {
		for _, f := range strings.Fields(string(out)) {
			if n, err := strconv.Atoi(f); err == nil {
				ys = append(ys, n)
			}
		}
	}
	if len(ys) == 0 {
		return strconv.Itoa(buildTime().UTC().Year())
	}
	sort.Ints(ys)
	if ys[0] == ys[len(ys)-1] {
		return strconv.Itoa(ys[0])
	}
	return fmt.Sprintf("%d-%d", ys[0], ys[len(ys)-1])
}

// buildTime is SOURCE_DATE_EPOCH when set (reproducible builds), else now.
func buildTime() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC()
}

// field writes one DEP-5 field: the first line after the name, the rest
// as continuation lines (a lone "." for an empty one; tabs expanded,
// trailing blanks dropped).
func field(w io.Writer, name, value string) {
	lines := strings.Split(strings.Trim(value, "\n"), "\n")
	fmt.Fprintf(w, "%s: %s\n", name, clean(lines[0]))
	for _, l := range lines[1:] {
		l = clean(l)
		if l == "" {
			l = "."
		}
		fmt.Fprintf(w, " %s\n", l)
	}
}

func clean(s string) string {
	s = strings.TrimRight(s, " \t\r")
	var b strings.Builder
	col := 0
	for _, r := range s {
		if r == '\t' {
			n := 8 - col%8
			b.WriteString(strings.Repeat(" ", n))
			col += n
			continue
		}
		b.WriteRune(r)
		col++
	}
	return b.String()
}

func writeCopyright(w io.Writer, info pkgInfo, pkg, platforms, own string, units []*unit) error {
	field(w, "Format", "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/")
	field(w, "Upstream-Name", info.Name)
	field(w, "Upstream-Contact", info.Maintainer)
	field(w, "Source", info.Homepage)
	field(w, "Comment", fmt.Sprintf(`/usr/bin/%s is one static Go binary. Besides %s's own
code it holds the Go standard library and runtime and the Go modules
below, those linked into it (go list -deps %s, for
%s; versions from go.mod). Generated when the
package is built, by .ci/pkgdoc, from each module's licence and notice
files.`,
		info.Name, info.Name, pkg, strings.ReplaceAll(platforms, ",", ", ")))
	fmt.Fprintln(w)

	field(w, "Files", "*")
	field(w, "Copyright", own)
	field(w, "License", "Apache-2.0")
	fmt.Fprintln(w)

	for _, u := range units {
		var files []string
		for _, n := range u.names {
			if n == "" {
				files = append(files, "go/src/*")
			} else {
				files = append(files, n+"/*")
			}
		}
		field(w, "Files", strings.Join(files, " "))
		hs := u.holders.lines()
		if len(hs) == 0 {
			hs = []string{"the authors of " + strings.Join(u.labels, ", ")}
		}
		field(w, "Copyright", strings.Join(hs, "\n"))
		if u.text == "" {
			field(w, "License", u.lic.name)
		} else {
			field(w, "License", u.lic.name+"\n"+u.text)
		}
		var c []string
		for i, l := range u.labels {
			if u.names[i] == "" {
				c = append(c, "The Go standard library and runtime, "+l+".")
			} else {
				c = append(c, "Go module "+l+".")
			}
		}
		if u.lic.note != "" {
			c = append(c, "", u.lic.note)
		}
		if u.notices != "" {
			c = append(c, "", "Notices:", "", u.notices)
		}
		field(w, "Comment", strings.Join(c, "\n"))
		fmt.Fprintln(w)
	}

	field(w, "License", `Apache-2.0
Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    https://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.

On Debian systems, the complete text of the Apache License, Version 2.0
can be found in "`+apacheCommon+`".`)
	return nil
}
