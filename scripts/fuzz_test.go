package scripts_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/duplexsync/duplex/scripts"
)

// FuzzImportArchive: an uploaded template archive of any bytes is imported
// or refused with ErrInvalid or ErrTooLarge, never a panic; one that imports
// exports and imports again to the same files.
func FuzzImportArchive(f *testing.F) {
	files := map[string][]byte{}
	err := filepath.WalkDir("support-escalation", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel("support-escalation", p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	body, err := scripts.FromFiles(files)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := scripts.ExportArchive(&buf, "support-escalation", body); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add([]byte("not an archive"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, got, err := scripts.ImportArchive(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, scripts.ErrInvalid) && !errors.Is(err, scripts.ErrTooLarge) {
				t.Fatalf("refused with %v, want ErrInvalid or ErrTooLarge", err)
			}
			return
		}
		var again bytes.Buffer
		if err := scripts.ExportArchive(&again, name, got); err != nil {
			t.Fatalf("export of an imported archive: %v", err)
		}
		if _, _, err := scripts.ImportArchive(&again); err != nil {
			t.Fatalf("re-import: %v", err)
		}
	})
}
