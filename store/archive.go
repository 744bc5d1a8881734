package store

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The archive is a directory of JSON Lines files, one per month of
// session creation (UTC): sessions-2026-09.jsonl holds the sessions
// created in September 2026, one per line, each exactly the JSON record
// the ledger held (a Session). Lines are appended, never rewritten, by
// Store.Archive only; readers (ArchivedSessions, `sitelink sessions
// -archive`, any JSON Lines tool) need no lock.
const (
	archivePrefix = "sessions-"
	archiveSuffix = ".jsonl"
	monthLayout   = "2006-01"
	// maxArchiveLine bounds one line read back: a session record is a
	// few kilobytes (its answers and history are bounded).
	maxArchiveLine = 1 << 20
)

// ArchiveMonth is the month file a session goes to: the UTC month it was
// created in, "2006-01".
func ArchiveMonth(s *Session) string { return s.CreatedAt.UTC().Format(monthLayout) }

// ArchiveFileName is the file of one month in the archive directory.
func ArchiveFileName(month string) string { return archivePrefix + month + archiveSuffix }

// ArchiveFile is one month file of an archive directory.
type ArchiveFile struct {
	Month string // "2006-01"
	Path  string
}

// ArchiveFiles lists the month files of an archive directory, oldest
// month first. A directory that does not exist holds none.
func ArchiveFiles(dir string) ([]ArchiveFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	var out []ArchiveFile
	for _, e := range ents {
		name := e.Name()
		month, ok := strings.CutPrefix(name, archivePrefix)
		if !ok || e.IsDir() {
			continue
		}
		if month, ok = strings.CutSuffix(month, archiveSuffix); !ok {
			continue
		}
		if _, err := time.Parse(monthLayout, month); err != nil {
			continue
		}
		out = append(out, ArchiveFile{Month: month, Path: filepath.Join(dir, name)})
	}
	slices.SortFunc(out, func(a, b ArchiveFile) int { return cmp.Compare(a.Month, b.Month) })
	return out, nil
}

// ArchiveLineError is a line of an archive file that holds no session:
// damaged or edited by hand. It reads "FILE:LINE: problem".
type ArchiveLineError struct {
	Path string
	Line int
	Err  error
}

func (e *ArchiveLineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err) }

func (e *ArchiveLineError) Unwrap() error { return e.Err }

// ReadArchiveFile calls fn for each session of one archive file, in the
// order they were archived, until fn returns false. A line that does not
// decode is passed to bad (nil: ignored) and skipped. A last line without
// its newline is a write in progress, or one that a crash cut short and
// the next Archive redoes: it is not a session yet and is skipped
// silently.
func ReadArchiveFile(path string, fn func(Session) bool, bad func(*ArchiveLineError)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	return readArchive(f, path, fn, bad)
}

func readArchive(r io.Reader, path string, fn func(Session) bool, bad func(*ArchiveLineError)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for line := 1; ; line++ {
		b, tooLong, err := readLine(br, buf[:0])
		buf = b
		if err == io.EOF {
			return nil // an unterminated last line is not a record yet
		}
		if err != nil {
			return fmt.Errorf("archive %s: %w", path, err)
		}
		if tooLong {
			if bad != nil {
				bad(&ArchiveLineError{path, line, fmt.Errorf("line longer than %d bytes", maxArchiveLine)})
			}
			continue
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		s, err := decodeSession(b)
		if err != nil {
			if bad != nil {
				bad(&ArchiveLineError{path, line, err})
			}
			continue
		}
		if !fn(s) {
			return nil
		}
	}
}

// readLine appends one line, without its newline, to buf. A line longer
// than maxArchiveLine is read to its end but not kept (tooLong). io.EOF
// means there is no complete line left.
func readLine(br *bufio.Reader, buf []byte) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) <= maxArchiveLine+1 {
			buf = append(buf, chunk...)
		} else {
			tooLong = true
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(buf, []byte("\n")), tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, false, err // io.EOF: an unterminated tail, or nothing
		}
	}
}

// ArchiveQuery selects archived sessions by creation time: Since
// inclusive, Until exclusive, zero for no bound. Limit > 0 stops after
// that many sessions.
type ArchiveQuery struct {
	Since, Until time.Time
	Limit        int
}

// ArchivedSessions returns the archived sessions in dir that q selects,
// newest first by CreatedAt. It reads one month file at a time, so its
// memory is one month's sessions, whatever the archive's size. A
// session found twice in a month file (which Archive never writes, but
// files can be concatenated by hand) is returned once, as its last line
// says. Damaged lines go to bad (nil: ignored) as *ArchiveLineError.
func ArchivedSessions(dir string, q ArchiveQuery, bad func(*ArchiveLineError)) ([]Session, error) {
	files, err := ArchiveFiles(dir)
	if err != nil {
		return nil, err
	}
	var out []Session
	for _, f := range slices.Backward(files) {
		m, _ := time.Parse(monthLayout, f.Month)
		if !q.Since.IsZero() && !m.AddDate(0, 1, 0).After(q.Since) {
			break // the month ended before Since; older ones too
		}
		if !q.Until.IsZero() && !m.Before(q.Until) {
			continue
		}
		var month []Session
		at := map[string]int{}
		err := ReadArchiveFile(f.Path, func(s Session) bool {
			if !q.Since.IsZero() && s.CreatedAt.Before(q.Since) || !q.Until.IsZero() && !s.CreatedAt.Before(q.Until) {
				return true
			}
			if i, ok := at[s.SparkTransactionID]; ok {
				month[i] = s
				return true
			}
			at[s.SparkTransactionID] = len(month)
			month = append(month, s)
			return true
		}, bad)
		if err != nil {
			return out, err
		}
		sortNewestFirst(month)
		for _, s := range month {
			if q.Limit > 0 && len(out) >= q.Limit {
				return out, nil
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// syncDir makes a directory's entries (a file created or renamed in it)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
