// Package atomicfile writes small files so that a crash at any moment leaves
// either the old content or the new, never a torn or empty file: the data
// goes to a temporary file in the same directory, which is synced, closed and
// renamed over the target, and then the directory itself is synced so the
// rename survives a power cut.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path with the permission bits of mode, replacing
// any file there atomically. The temporary file is removed on failure.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// Create is WriteFile for a file that must not exist yet: when path exists,
// whoever made it first wins, nothing is written and the error wraps
// fs.ErrExist. It links the synced temporary file into place, so the
// directory's file system must support hard links.
func Create(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("atomicfile: %s: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new temporary file beside path and syncs it.
func writeTemp(path string, data []byte, mode os.FileMode) (string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("atomicfile: %w", err)
	}
	// CreateTemp makes the file 0600; set the wanted bits exactly, whatever
	// the umask.
	if err := f.Chmod(mode.Perm()); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("atomicfile: %w", err)
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync directory: %w", err)
	}
	return nil
}

// MkdirAll makes dir and any missing parents with the permission bits of
// mode, and syncs the directory each new one was made in, so that a power
// cut cannot take them away with what is written into them later.
func MkdirAll(dir string, mode os.FileMode) error {
	var made []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		made = append(made, d)
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	for _, d := range made {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}
