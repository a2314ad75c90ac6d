package firmware

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrVersion is returned by ParseVersion for a string that is not a
// version.
var ErrVersion = errors.New("firmware: not a version")

// Version is a release version, MAJOR.MINOR.PATCH.
type Version struct {
	Major, Minor, Patch uint32
}

// maxPart bounds each number of a version.
const maxPart = 1<<31 - 1

// ParseVersion reads MAJOR.MINOR.PATCH: three decimal numbers of at most
// ten digits and below 2^31, without signs, leading zeros ("0" itself is
// fine) or anything around them. Pre-release and build suffixes
// ("1.4.0-rc1", "+meta") are refused: a box orders releases, not builds.
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("%w: %q is not MAJOR.MINOR.PATCH", ErrVersion, s)
	}
	var n [3]uint32
	for i, p := range parts {
		if p == "" || len(p) > 10 || (len(p) > 1 && p[0] == '0') || strings.Trim(p, "0123456789") != "" {
			return Version{}, fmt.Errorf("%w: %q is not MAJOR.MINOR.PATCH", ErrVersion, s)
		}
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil || v > maxPart {
			return Version{}, fmt.Errorf("%w: %q: a number is too large", ErrVersion, s)
		}
		n[i] = uint32(v)
	}
	return Version{n[0], n[1], n[2]}, nil
}

// String returns the version as ParseVersion reads it.
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Compare returns -1, 0 or +1 as v is older than, the same as or newer than w.
func (v Version) Compare(w Version) int {
	for _, d := range [3][2]uint32{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		switch {
		case d[0] < d[1]:
			return -1
		case d[0] > d[1]:
			return 1
		}
	}
	return 0
}

// compareStrings compares two version strings; one that does not parse
// (a development build's "dev", or none at all) is older than any that
// does, and equal to another that does not.
func compareStrings(a, b string) int {
	va, ea := ParseVersion(a)
	vb, eb := ParseVersion(b)
	switch {
	case ea != nil && eb != nil:
		return 0
	case ea != nil:
		return -1
	case eb != nil:
		return 1
	}
	return va.Compare(vb)
}

// Newer reports whether version a is newer than b; a string that is not a
// version is older than every version.
func Newer(a, b string) bool { return compareStrings(a, b) > 0 }
