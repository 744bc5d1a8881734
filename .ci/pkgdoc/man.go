package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
)

// sitelink(1) is made from what the binary itself prints: `sitelink help`
// gives the name line, the commands and their one-line descriptions, and
// `sitelink CMD [SUB] -h` each command's flags (Go's flag listing) or its
// own usage. Only the package description (nfpm config) and the FILES,
// EXIT STATUS and SEE ALSO sections are written here.

func cmdMan(args []string) error {
	fs, out, nfpm := newFlags("man")
	bin := fs.String("bin", "", "the built sitelink `binary` (for this machine) whose help is read")
	version := fs.String("version", "", "`version` for the page's footer (default: what the binary's version command says)")
	fs.Parse(args)
	if *bin == "" {
		return fmt.Errorf("-bin is required")
	}
	info, err := readNfpm(*nfpm)
	if err != nil {
		return err
	}
	help, ok := runHelp(*bin, "help")
	if !ok || help == "" {
		return fmt.Errorf("%s help: no usage", *bin)
	}
	if *version == "" {
		v, _ := runHelp(*bin, "version")
		*version = strings.TrimSpace(v)
	}
	page, err := manPage(*bin, info, *version, help)
	if err != nil {
		return err
	}
	return output(*out, func(w io.Writer) error {
		_, err := io.WriteString(w, page)
		return err
	})
}

// runHelp runs the binary with args (stdin empty, 10 s at most) and
// returns what it printed on stdout and stderr, and whether it looked like
// help: exit status 0 or 2 (usage).
func runHelp(bin string, args ...string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return "", false
	}
	return buf.String(), code == 0 || code == 2
}

// entry is one command of a usage text: its synopsis and description.
type entry struct {
	synopsis, desc string
}

// usageText is a usage text taken apart: its entries and the paragraphs
// of prose after them.
type usageText struct {
	entries []entry
	prose   []string
}

var gap = regexp.MustCompile(`\S(\s{2,})\S`)

// parseUsage reads a usage text in the layout sitelink's commands print:
// entries start "  sitelink ...", with the description in a column to the
// right or on indented lines below; indented lines that start with "[" or
// "-" continue the synopsis. A "usage: sitelink A | sitelink B" line gives
// one entry per alternative. Unindented lines after the entries are prose.
func parseUsage(text string) usageText {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	col := descColumn(lines)
	var u usageText
	var para []string
	flush := func() {
		if len(para) > 0 {
			u.prose = append(u.prose, strings.Join(para, " "))
			para = nil
		}
	}
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case strings.HasPrefix(strings.ToLower(trimmed), "usage:") && len(trimmed) > len("usage:"):
			for _, alt := range strings.Split(strings.TrimSpace(trimmed[len("usage:"):]), " | sitelink ") {
				if !strings.HasPrefix(alt, "sitelink ") {
					alt = "sitelink " + alt
				}
				u.entries = append(u.entries, entry{synopsis: alt})
			}
		case indent >= 2 && strings.HasPrefix(trimmed, "sitelink "):
			flush()
			next := ""
			if i+1 < len(lines) {
				next = lines[i+1]
			}
			u.entries = append(u.entries, splitEntry(line, col, next))
		case indent > 2 && len(u.entries) > 0 && trimmed != "":
			e := &u.entries[len(u.entries)-1]
			if e.desc == "" && (strings.HasPrefix(trimmed, "[") || strings.HasPrefix(trimmed, "-")) {
				e.synopsis += " " + trimmed
			} else {
				e.desc = strings.TrimSpace(e.desc + " " + trimmed)
			}
		case trimmed == "" || strings.HasSuffix(trimmed, ":") && indent == 0 && !strings.Contains(trimmed, " "):
			flush() // a blank line, or a heading such as "Usage:"
		case indent == 0 && strings.HasPrefix(trimmed, "sitelink — "), indent == 0 && strings.HasPrefix(trimmed, "sitelink - "):
			// the name line, used by NAME
		default:
			para = append(para, trimmed)
		}
	}
	flush()
	return u
}

// descColumn is the column most entries' descriptions start at (0 when
// none has a description beside it).
func descColumn(lines []string) int {
	count := map[int]int{}
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "sitelink ") {
			continue
		}
		if m := gap.FindAllStringSubmatchIndex(l, -1); m != nil {
			count[m[len(m)-1][3]]++
		}
	}
	best, n := 0, 0
	for c, k := range count {
		if k > n || k == n && c < best {
			best, n = c, k
		}
	}
	return best
}

// splitEntry takes an entry line apart at the description column: at a
// gap of two or more blanks ending there; else, when the description is
// not on the next line, at the first blank from just before the column (a
// synopsis that runs into it, with a single blank left).
func splitEntry(line string, col int, next string) entry {
	if col > 2 && len(line) > col && line[col-1] == ' ' && line[col-2] == ' ' {
		return entry{strings.TrimSpace(line[:col]), strings.TrimSpace(line[col:])}
	}
	nextIndent := len(next) - len(strings.TrimLeft(next, " "))
	if col > 2 && len(line) > col && !(strings.TrimSpace(next) != "" && nextIndent >= col-2) {
		if k := strings.IndexByte(line[col-2:], ' '); k >= 0 {
			at := col - 2 + k
			return entry{strings.TrimSpace(line[:at]), strings.TrimSpace(line[at:])}
		}
	}
	return entry{synopsis: strings.TrimSpace(line)}
}

var commandWord = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// words is the command path of a synopsis: "sitelink fleet terminals
// [-give ..." gives [fleet terminals]; it stops at the first flag,
// bracket, alternative list or placeholder.
func words(synopsis string) []string {
	var w []string
	for _, f := range strings.Fields(synopsis)[1:] {
		if !commandWord.MatchString(f) {
			break
		}
		w = append(w, f)
	}
	return w
}

// flagHelp is one command's -h output, parsed.
type flagHelp struct {
	names []string // commands with this same listing
	flags []entry  // Go flag listing: -name arg, usage
	usage usageText
}

// commandHelp runs `bin CMD... -h` for every command path in the main
// usage and keeps the outputs that are help: a Go flag listing ("Usage of
// sitelink run:") or a usage text ("usage:"). Commands with the same
// listing share it.
func commandHelp(bin string, u usageText) []*flagHelp {
	var out []*flagHelp
	seen := map[string]bool{}
	byBody := map[string]*flagHelp{}
	for _, e := range u.entries {
		w := words(e.synopsis)
		name := strings.Join(append([]string{"sitelink"}, w...), " ")
		if len(w) == 0 || seen[name] {
			continue
		}
		seen[name] = true
		text, ok := runHelp(bin, append(w, "-h")...)
		if !ok {
			continue
		}
		first, body, _ := strings.Cut(text, "\n")
		switch {
		case strings.HasPrefix(first, "Usage of "):
			if h := byBody[body]; h != nil {
				h.names = append(h.names, name)
				continue
			}
			h := &flagHelp{names: []string{name}, flags: parseFlags(body)}
			if len(h.flags) == 0 {
				continue
			}
			byBody[body] = h
			out = append(out, h)
		case strings.HasPrefix(strings.ToLower(first), "usage:"):
			pu := parseUsage(text)
			if len(pu.entries) == 0 {
				continue
			}
			out = append(out, &flagHelp{names: []string{name}, usage: pu})
		}
	}
	return out
}

// parseFlags reads Go's flag.PrintDefaults layout: "  -name arg" lines,
// each followed by "\t"-indented usage lines (or "  -x\tusage" on one).
func parseFlags(body string) []entry {
	var fl []entry
	for _, line := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			name, usage, _ := strings.Cut(strings.TrimSpace(line), "\t")
			fl = append(fl, entry{strings.TrimSpace(name), strings.TrimSpace(usage)})
		case strings.HasPrefix(strings.TrimLeft(line, " "), "\t") && len(fl) > 0:
			e := &fl[len(fl)-1]
			e.desc = strings.TrimSpace(e.desc + " " + strings.TrimSpace(line))
		}
	}
	return fl
}

// esc makes text safe in roff: backslashes, minus signs (so options can
// be searched and copied) and non-ASCII characters as \[uXXXX].
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > unicode.MaxASCII:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

var placeholder = regexp.MustCompile(`\b[A-Z][A-Z0-9_]*\b`)

// synopsisRoff sets a synopsis in bold with its placeholders (FILE, N,
// URL...) in italics.
func synopsisRoff(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	last := 0
	for _, m := range placeholder.FindAllStringIndex(s, -1) {
		b.WriteString(esc(s[last:m[0]]))
		b.WriteString(`\fI` + esc(s[m[0]:m[1]]) + `\fB`)
		last = m[1]
	}
	b.WriteString(esc(s[last:]))
	return `\fB` + b.String() + `\fR`
}

// flagRoff sets "-config file" as bold flag, italic argument.
func flagRoff(s string) string {
	name, arg, _ := strings.Cut(s, " ")
	out := `\fB` + esc(name) + `\fR`
	if arg != "" {
		out += ` \fI` + esc(arg) + `\fR`
	}
	return out
}

// prose sets a text line, with `code` in bold (and \& before a leading
// character roff would take for a request).
func prose(s string) string {
	parts := strings.Split(s, "`")
	for i := range parts {
		if i%2 == 1 {
			parts[i] = `\fB` + esc(parts[i]) + `\fR`
		} else {
			parts[i] = esc(parts[i])
		}
	}
	out := strings.Join(parts, "")
	if strings.HasPrefix(out, ".") || strings.HasPrefix(out, "'") {
		out = `\&` + out
	}
	return out
}

func manPage(bin string, info pkgInfo, version, help string) (string, error) {
	u := parseUsage(help)
	if len(u.entries) < 2 {
		return "", fmt.Errorf("%s help: found %d commands, want the command list", bin, len(u.entries))
	}
	first, _, _ := strings.Cut(help, "\n")
	name := info.Summary
	for _, sep := range []string{" — ", " - "} {
		if _, after, ok := strings.Cut(first, sep); ok {
			name = after
			break
		}
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p(`.\" Generated by .ci/pkgdoc from the output of 'sitelink help' and`)
	p(`.\" 'sitelink COMMAND \-h'; edit cmd/sitelink, not this page.`)
	footer := info.Name + " " + strings.TrimPrefix(version, info.Name+" ")
	p(`.TH %s 1 "%s" "%s" "User Commands"`, strings.ToUpper(info.Name), buildTime().Format("2006-01-02"), esc(footer))
	p(".nh")
	p(".ad l")
	p(".SH NAME")
	p(`%s \- %s`, info.Name, esc(name))
	p(".SH SYNOPSIS")
	p(`\fBsitelink\fR \fIcommand\fR [\fIoptions\fR]`)
	p(".SH DESCRIPTION")
	p("%s", prose(info.Summary+"."))
	if len(info.Description) > 0 {
		p(".PP")
		p("%s", prose(strings.Join(info.Description, " ")))
	}
	p(".SH COMMANDS")
	for _, e := range u.entries {
		p(".TP")
		p("%s", synopsisRoff(e.synopsis))
		if e.desc != "" {
			p("%s", prose(e.desc))
		}
	}
	for _, para := range u.prose {
		p(".PP")
		p("%s", prose(para))
	}
	p(".SH OPTIONS")
	p("Each command takes its own flags, shown by \\fBsitelink\\fR \\fIcommand\\fR \\fB\\-h\\fR.")
	for _, h := range commandHelp(bin, u) {
		names := h.names[0]
		if len(h.names) > 1 {
			var rest []string
			for _, n := range h.names[1:] {
				rest = append(rest, strings.TrimPrefix(n, "sitelink "))
			}
			names += ", " + strings.Join(rest, ", ")
		}
		p(`.SS "%s"`, esc(names))
		for _, f := range h.flags {
			p(".TP")
			p("%s", flagRoff(f.synopsis))
			p("%s", prose(f.desc))
		}
		for _, e := range h.usage.entries {
			p(".TP")
			p("%s", synopsisRoff(e.synopsis))
			if e.desc != "" {
				p("%s", prose(e.desc))
			}
		}
		for _, para := range h.usage.prose {
			p(".PP")
			p("%s", prose(para))
		}
	}
	p(".SH FILES")
	files := [][2]string{
		{"/etc/sitelink/sitelink.yaml", "The site controller's configuration (sitelink run)."},
		{"/etc/sitelink/relay.yaml", "The relay's configuration (sitelink relay)."},
		{"/var/lib/sitelink/sitelink.db", "The session ledger: sessions and payments not yet settled. Kept when the package is purged."},
		{"/run/sitelink/api.sock", "The running daemon's local API, used by the operating commands."},
		{"/usr/share/doc/sitelink/examples/", "Example configurations: edge and relay, hardware profiles, and a mosquitto broker configuration with its ACLs."},
	}
	for _, f := range files {
		p(".TP")
		p(`\fI%s\fR`, esc(f[0]))
		p("%s", prose(f[1]))
	}
	p(".SH EXIT STATUS")
	p("0 on success, 1 on an error, 2 on a usage error.")
	p(".SH SEE ALSO")
	seeAlso := []string{"systemctl(1)", "journalctl(1)", "systemd-sysusers(8)", "mosquitto(8)"}
	sort.Strings(seeAlso)
	for i, s := range seeAlso {
		page, sec, _ := strings.Cut(strings.TrimSuffix(s, ")"), "(")
		sep := ","
		if i == len(seeAlso)-1 {
			sep = ""
		}
		p(`.BR %s (%s)%s`, esc(page), sec, sep)
	}
	p(".PP")
	p("%s", prose("/usr/share/doc/sitelink/README.md and "+info.Homepage))
	return b.String(), nil
}
