package firmware

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"smartboxd/contract"
)

// Download bounds.
const (
	// DownloadAttempts is how many times a download is tried without
	// progress before it fails; an attempt that gained bytes does not count.
	DownloadAttempts = 5
	// StallTimeout ends an attempt that received nothing for this long.
	StallTimeout = 60 * time.Second
	// syncEvery is how many bytes are written between two syncs of a
	// download, bounding what a power cut loses.
	syncEvery = 4 << 20
	// maxURL bounds the URL of an update.
	maxURL = 2048
)

var (
	// ErrURL is returned by CheckURL for a URL the box does not fetch from.
	ErrURL = errors.New("firmware: bad url")
	// ErrHash is returned when a download is not the size or SHA-256 its
	// manifest signs. It comes as a *contract.Error too
	// (firmware.hash_mismatch).
	ErrHash = errors.New("firmware: hash mismatch")
	// ErrDownload is returned when a download fails for good. It comes as
	// a *contract.Error too (firmware.download_failed).
	ErrDownload = errors.New("firmware: download failed")
)

// CheckURL reads the URL of an update: https://, or http:// to a loopback
// host (127.0.0.0/8, ::1, localhost) only, with a host and no user
// information or fragment. A refusal is cmd.invalid.
func CheckURL(raw string) (*url.URL, error) {
	bad := func(format string, args ...any) (*url.URL, error) {
		return nil, fmt.Errorf("%w: %w", ErrURL, contract.Errorf(contract.CodeCmdInvalid, "data.url: "+format, args...))
	}
	if len(raw) > maxURL {
		return bad("longer than %d bytes", maxURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return bad("not a URL")
	case u.Host == "" || u.Hostname() == "":
		return bad("no host")
	case u.User != nil:
		return bad("no user information allowed")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("no fragment allowed")
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return u, nil
	case u.Scheme == "http":
		return bad("http:// is for a loopback host only; use https://")
	}
	return bad("scheme %q, want https://", u.Scheme)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fetch downloads m from u to its partial file, resuming from what the
// file holds with an HTTP range request, and checks the whole file's size
// and SHA-256. A mismatch removes the file.
func (u *Updater) fetch(ctx context.Context, m Manifest, src *url.URL) error {
	path := u.dir.partial(m)
	u.dir.removePartials(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return downloadFailed("%v", err)
	}
	defer f.Close()
	fails := 0
	backoff := time.Second
	for {
		have, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return downloadFailed("%v", err)
		}
		if have > m.Size {
			if err := f.Truncate(0); err != nil {
				return downloadFailed("%v", err)
			}
			have = 0
		}
		if have == m.Size {
			break
		}
		got, err := u.attempt(ctx, f, m, src, have)
		if err == nil {
			continue // re-read the size: complete, or a cut to resume
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var permanent *contract.Error
		if errors.As(err, &permanent) {
			if errors.Is(err, ErrHash) {
				f.Close()
				os.Remove(path)
			}
			return err
		}
		if got == 0 {
			fails++
		} else {
			fails, backoff = 0, time.Second
		}
		if fails >= DownloadAttempts {
			return downloadFailed("%v (%d attempts)", err, fails)
		}
		u.log.Warn("firmware download interrupted; retrying", "version", m.Version.String(), "have", have+got, "size", m.Size, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-u.clock.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
	if err := f.Sync(); err != nil {
		return downloadFailed("%v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return downloadFailed("%v", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return downloadFailed("%v", err)
	}
	if [32]byte(h.Sum(nil)) != m.SHA256 {
		f.Close()
		os.Remove(path)
		return hashMismatch("the download's sha256 is not the manifest's")
	}
	return nil
}

// attempt makes one request for the bytes from have on and appends them to
// f. It returns how many bytes it gained; a *contract.Error is a failure
// for good (a 4xx status, a size other than the manifest's).
func (u *Updater) attempt(ctx context.Context, f *os.File, m Manifest, src *url.URL, have int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.String(), nil)
	if err != nil {
		return 0, downloadFailed("%v", err)
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	stall := u.clock.AfterFunc(StallTimeout, cancel)
	defer stall.Stop()
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return 0, fmt.Errorf("firmware: bad Content-Range %q for bytes=%d-", resp.Header.Get("Content-Range"), have)
		}
		if total >= 0 && total != m.Size {
			return 0, hashMismatch("the server's file is %d bytes, the manifest says %d", total, m.Size)
		}
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != m.Size {
			return 0, hashMismatch("the server's file is %d bytes, the manifest says %d", resp.ContentLength, m.Size)
		}
		if err := f.Truncate(0); err != nil {
			return 0, downloadFailed("%v", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, downloadFailed("%v", err)
		}
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// The file holds bytes the server does not have: start over.
		if err := f.Truncate(0); err != nil {
			return 0, downloadFailed("%v", err)
		}
		return 0, fmt.Errorf("firmware: range bytes=%d- not satisfiable", have)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return 0, downloadFailed("%s answered %s", src.Redacted(), resp.Status)
	default:
		return 0, fmt.Errorf("firmware: %s answered %s", src.Redacted(), resp.Status)
	}
	var got, unsynced int64
	buf := make([]byte, 64<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stall.Reset(StallTimeout)
			if have+got+int64(n) > m.Size {
				return got, hashMismatch("the server sent more than the manifest's %d bytes", m.Size)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return got, downloadFailed("%v", err)
			}
			got += int64(n)
			if unsynced += int64(n); unsynced >= syncEvery {
				if err := f.Sync(); err != nil {
					return got, downloadFailed("%v", err)
				}
				unsynced = 0
			}
		}
		if rerr == io.EOF {
			if have+got < m.Size {
				return got, fmt.Errorf("firmware: the download ended at %d of %d bytes", have+got, m.Size)
			}
			return got, nil
		}
		if rerr != nil {
			return got, rerr
		}
	}
}

// contentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func contentRange(h string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total < 0 {
			return 0, 0, false
		}
	}
	return start, total, true
}

func downloadFailed(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrDownload, contract.Errorf(contract.CodeFirmwareDownloadFailed, format, args...))
}

func hashMismatch(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrHash, contract.Errorf(contract.CodeFirmwareHashMismatch, format, args...))
}
