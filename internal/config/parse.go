package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// maxFileSize bounds a config file; a real one is a few kilobytes.
const maxFileSize = 1 << 20

// Load reads, parses and validates the config file at path. A file that
// cannot be read is an ordinary wrapped error; a file with problems gives a
// *Problems (see Parse).
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, maxFileSize)
	}
	return parse(data, fi.Mode().Perm())
}

// Parse decodes and validates one YAML document. Fields the document leaves
// out take their defaults (see Default). Unknown keys, values of the wrong
// type and every rule Validate checks are reported together as a
// *Problems, one problem per field; the returned Config is then nil.
//
// A plain console.technician_pin is replaced by its bcrypt hash in
// TechnicianPINHash and cleared; the PIN itself is never kept and never
// appears in a problem.
func Parse(data []byte) (*Config, error) { return parse(data, 0o600) }

// parse is Parse of a file with permissions perm: a file that holds a plain
// technician_pin must not be readable by group or others.
func parse(data []byte, perm os.FileMode) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Problems{{Message: redact(err.Error())}}
	}
	for { // only empty documents may follow, as after a trailing "---"
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || !isEmptyDocument(&extra) {
			return nil, &Problems{{Message: "yaml: the file must hold one document"}}
		}
	}

	var sc schemaCheck
	sc.document(&root)
	for _, p := range sc.problems {
		if p.Field == "" {
			return nil, &Problems{p}
		}
	}

	c := Default()
	if root.Kind != 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && len(sc.problems) == 0 {
			// The schema check accepts only what decodes; this is a
			// safety net that keeps the error in front of the user.
			sc.problems = append(sc.problems, Problem{Message: redact(err.Error())})
		}
	}
	c.fillDerived()

	probs := sc.problems
	for _, p := range c.check() {
		if !shadowed(p.Field, sc.problems) {
			probs = append(probs, p)
		}
	}
	if c.Console.TechnicianPIN != "" && perm&0o077 != 0 {
		probs = append(probs, Problem{Field: "console.technician_pin",
			Message: fmt.Sprintf("the config file holds a PIN but has mode %04o; make it 0600 or stricter, or give technician_pin_hash", perm)})
	}
	if len(probs) > 0 {
		ps := Problems(probs)
		return nil, &ps
	}

	if pin := c.Console.TechnicianPIN; pin != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(pin), bcrypt.DefaultCost)
		if err != nil {
			return nil, fmt.Errorf("config: hash console.technician_pin: %w", err)
		}
		c.Console.TechnicianPINHash = string(hash)
		c.Console.TechnicianPIN = ""
	}
	return c, nil
}

// shadowed reports whether field is, or lies under, a field that already has
// a problem from the schema check (a value of the wrong type keeps its
// default, which would otherwise be reported a second time).
func shadowed(field string, probs []Problem) bool {
	for _, p := range probs {
		if field == p.Field || strings.HasPrefix(field, p.Field+".") || strings.HasPrefix(field, p.Field+"[") {
			return true
		}
	}
	return false
}

// quoted matches the `...` quoting yaml.v3 uses for values in its errors.
var quoted = regexp.MustCompile("`[^`]*`")

// redact removes quoted values from a yaml error, so that no value from the
// file (a PIN included) is ever echoed.
func redact(msg string) string { return oneLine(quoted.ReplaceAllString(msg, "`...`")) }

// maxVisits bounds the schema check's work on a document full of aliases
// and merges; a real config takes a few hundred steps.
const maxVisits = 100_000

// schemaCheck walks a YAML node tree beside the Config type and reports,
// with dotted field paths, what yaml.v3 alone reports without them: unknown
// and duplicate keys and values of the wrong type.
type schemaCheck struct {
	problems []Problem
	visits   int
}

var configType = reflect.TypeFor[Config]()

func (sc *schemaCheck) add(field, msg string) {
	sc.problems = append(sc.problems, Problem{Field: field, Message: oneLine(msg)})
}

func (sc *schemaCheck) document(root *yaml.Node) {
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == 0 || isNull(n) {
		return // an empty document: every field at its default
	}
	if resolve(n).Kind != yaml.MappingNode {
		sc.add("", "yaml: the document must be a mapping of settings (box_id: ..., data_dir: ...)")
		return
	}
	sc.value(n, configType, "")
}

// tick counts one step of work and reports whether the check may go on.
func (sc *schemaCheck) tick() bool {
	sc.visits++
	if sc.visits == maxVisits+1 {
		sc.add("", "yaml: the document is too large or too deeply aliased")
	}
	return sc.visits <= maxVisits
}

// value checks node n against type t at the dotted path.
func (sc *schemaCheck) value(n *yaml.Node, t reflect.Type, path string) {
	n = resolve(n)
	if !sc.tick() {
		return
	}
	if isNull(n) {
		return // null leaves the default
	}
	switch t.Kind() {
	case reflect.Struct:
		sc.mapping(n, t, path, map[string]int{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			sc.add(path, "must be a list")
			return
		}
		for i, e := range n.Content {
			sc.value(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Pointer:
		sc.value(n, t.Elem(), path)
	case reflect.String:
		var s string
		if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
			sc.add(path, "must be a string")
		}
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			sc.add(path, "must be a whole number")
		} else if n.Decode(&i) != nil {
			sc.add(path, "number out of range")
		}
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&f) != nil {
			sc.add(path, "must be a number")
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			sc.add(path, "must be true or false")
		}
	default:
		// Every kind Config uses is handled above; TestSchemaKinds keeps it so.
		sc.add(path, fmt.Sprintf("config: no schema check for %v", t))
	}
}

// mapping checks a mapping node against struct type t. seen maps the keys
// met so far at this level to their line; merged mappings ("<<: *base") are
// checked on their own, since the keys beside them override theirs.
func (sc *schemaCheck) mapping(n *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	if n.Kind != yaml.MappingNode {
		sc.add(path, "must be a mapping")
		return
	}
	for i := 0; i+1 < len(n.Content) && sc.tick(); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			sc.add(path, "keys must be names")
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			v = resolve(v)
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					sc.mapping(resolve(m), t, path, map[string]int{})
				}
			} else {
				sc.mapping(v, t, path, map[string]int{})
			}
			continue
		}
		field := joinPath(path, k.Value)
		f, ok := fieldByKey(t, k.Value)
		if !ok {
			sc.add(field, "unknown field")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			sc.add(field, fmt.Sprintf("given twice (first on line %d)", line))
			continue
		}
		seen[k.Value] = k.Line
		sc.value(v, f.Type, field)
	}
}

// resolve follows an alias to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isEmptyDocument(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n.Kind == 0 || n.Kind == yaml.DocumentNode && len(n.Content) == 0 || isNull(n)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// fieldByKey finds the struct field whose yaml tag names key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key && name != "" && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinPath appends key to a dotted path, quoting a key that is not a plain
// name so that the path stays on one line and unambiguous.
func joinPath(path, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
