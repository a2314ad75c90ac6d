package firmware

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://releases.example.com/smartboxd-1.4.0", true},
		{"https://releases.example.com:8443/a?b=c", true},
		{"http://127.0.0.1:8080/smartboxd", true},
		{"http://127.1.2.3/smartboxd", true},
		{"http://[::1]:80/smartboxd", true},
		{"http://localhost/smartboxd", true},
		{"http://releases.example.com/smartboxd", false},
		{"http://10.0.0.1/smartboxd", false},
		{"ftp://127.0.0.1/smartboxd", false},
		{"file:///usr/local/bin/smartboxd", false},
		{"https://user:pw@releases.example.com/x", false},
		{"https://releases.example.com/x#frag", false},
		{"https:///x", false},
		{"/relative", false},
		{"https://" + strings.Repeat("a", maxURL), false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := CheckURL(tc.url)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckURL: %v", err)
			}
			if err != nil && (!errors.Is(err, ErrURL) || contract.CodeOf(err) != contract.CodeCmdInvalid) {
				t.Fatalf("error %v: want ErrURL and cmd.invalid", err)
			}
		})
	}
}

// server serves one file with range requests; each request's Range header
// is recorded, and a request may be cut after n bytes.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	data    []byte
	cutAt   int // the next request without a Range header ends after this many bytes; 0: none
	ranges  []string
	noRange bool // answer every request with the whole file (200)
}

func newServer(t *testing.T, data []byte) *server {
	s := &server{data: data}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		cut, noRange := s.cutAt, s.noRange
		s.cutAt = 0
		s.mu.Unlock()
		if cut > 0 {
			// Promise the whole file, send part, and drop the connection.
			w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
			w.WriteHeader(http.StatusOK)
			w.Write(s.data[:cut])
			panic(http.ErrAbortHandler)
		}
		if noRange {
			r.Header.Del("Range")
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(s.data))
	}))
	t.Cleanup(s.Close)
	return s
}

func newUpdater(t *testing.T, running string) *Updater {
	t.Helper()
	u, err := New(Config{DataDir: t.TempDir(), Running: running, Clock: clockwork.NewRealClock()})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func manifestOf(v string, data []byte) Manifest {
	ver, _ := ParseVersion(v)
	return Manifest{Version: ver, SHA256: sha256.Sum256(data), Size: int64(len(data))}
}

func TestDownload(t *testing.T) {
	data := bytes.Repeat([]byte("smartboxd release "), 20000) // 360 kB
	for _, tc := range []struct {
		name       string
		partial    []byte // what the partial file holds before
		noRange    bool
		manifest   Manifest
		wantErr    error
		wantRanges []string
	}{
		{"fresh", nil, false, manifestOf("1.1.0", data), nil, []string{""}},
		{"resumes", data[:1000], false, manifestOf("1.1.0", data), nil, []string{"bytes=1000-"}},
		{"a server without ranges starts over", data[:1000], true, manifestOf("1.1.0", data), nil, []string{"bytes=1000-"}},
		{"a partial longer than the size starts over", append(bytes.Clone(data), 'x'), false, manifestOf("1.1.0", data), nil, []string{""}},
		{"already complete", data, false, manifestOf("1.1.0", data), nil, nil},
		{"hash mismatch", nil, false, Manifest{Version: Version{1, 1, 0}, SHA256: [32]byte{1}, Size: int64(len(data))}, ErrHash, []string{""}},
		{"a resumed file that does not hash", []byte("garbage!"), false, manifestOf("1.1.0", data), ErrHash, []string{"bytes=8-"}},
		{"another size", nil, false, manifestOf("1.1.0", data[:100]), ErrHash, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, data)
			s.noRange = tc.noRange
			u := newUpdater(t, "1.0.0")
			if tc.partial != nil {
				os.WriteFile(u.dir.partial(tc.manifest), tc.partial, 0o600)
			}
			err := u.Download(context.Background(), tc.manifest, s.URL+"/f")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Download: %v, want %v", err, tc.wantErr)
			}
			got, rerr := os.ReadFile(u.dir.partial(tc.manifest))
			switch {
			case tc.wantErr == nil && (rerr != nil || !bytes.Equal(got, data)):
				t.Fatalf("the partial file holds %d bytes (%v), want the %d of the file", len(got), rerr, len(data))
			case tc.wantErr != nil && rerr == nil:
				t.Fatalf("a refused download left its file")
			}
			if strings.Join(s.ranges, ",") != strings.Join(tc.wantRanges, ",") {
				t.Fatalf("requests with Range %q, want %q", s.ranges, tc.wantRanges)
			}
		})
	}
}

// TestDownloadCut: a connection dropped mid-way is resumed from where it
// ended, within the same Download.
func TestDownloadCut(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 50000)
	s := newServer(t, data)
	s.cutAt = 123456
	u := newUpdater(t, "1.0.0")
	m := manifestOf("1.1.0", data)
	if err := u.Download(context.Background(), m, s.URL+"/f"); err != nil {
		t.Fatal(err)
	}
	if len(s.ranges) != 2 || s.ranges[1] != "bytes=123456-" {
		t.Fatalf("requests %q, want a resume from 123456", s.ranges)
	}
	if err := u.Install(m); err != nil {
		t.Fatal(err)
	}
	st, _ := u.State()
	if st.Trial != "1.1.0" || st.Starts != 0 || !u.dir.has("1.1.0") {
		t.Fatalf("after Install: %+v", st)
	}
}

func TestDownloadFailsForGood(t *testing.T) {
	u := newUpdater(t, "1.0.0")
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	err := u.Download(context.Background(), manifestOf("1.1.0", []byte("x")), srv.URL+"/f")
	if !errors.Is(err, ErrDownload) || contract.CodeOf(err) != contract.CodeFirmwareDownloadFailed {
		t.Fatalf("a 404: %v", err)
	}
}

func TestCheck(t *testing.T) {
	pub, priv := keys(t)
	u, err := New(Config{DataDir: t.TempDir(), Running: "1.2.0", ReleaseKeys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(v string) string { return SignManifest(priv, manifestOf(v, []byte("x"))) }
	for _, tc := range []struct {
		name, version, floor, url, code string
	}{
		{"newer", "1.3.0", "", "https://example.com/f", ""},
		{"newer, at the floor", "1.3.0", "1.3.0", "https://example.com/f", ""},
		{"the running version", "1.2.0", "", "https://example.com/f", contract.CodeFirmwareDowngrade},
		{"older", "1.1.9", "", "https://example.com/f", contract.CodeFirmwareDowngrade},
		{"below the floor", "1.3.0", "1.4.0", "https://example.com/f", contract.CodeFirmwareDowngrade},
		{"a bad url", "1.3.0", "", "http://example.com/f", contract.CodeCmdInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := u.Check(sign(tc.version), tc.url, tc.floor)
			if tc.code == "" && err != nil || tc.code != "" && contract.CodeOf(err) != tc.code {
				t.Fatalf("Check: %v, want %q", err, tc.code)
			}
		})
	}
	if entries, _ := os.ReadDir(u.dir.Path()); len(entries) != 0 {
		t.Fatalf("Check wrote %v", entries)
	}
}
