package deptest

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "smartboxd"

// allowed lists, for each package, the project packages it may import.
// A package missing here is a test failure: add it deliberately.
var allowed = map[string][]string{
	"internal/config":                {"internal/expander", "trust"},
	"internal/wiegand":               {},
	"internal/sysclock":              {},
	"internal/sdnotify":              {},
	"internal/mqtttest":              {},
	"internal/democloud":             {"contract", "firmware", "offline", "trust"},
	"internal/deptest":               {},
	"contract":                       {},
	"store":                          {"contract", "internal/atomicfile"},
	"internal/weekly":                {},
	"offline":                        {},
	"internal/faultfs":               {},
	"internal/expander":              {},
	"internal/expander/expandertest": {},
	"locks":                          {},
	"display":                        {},
	"power":                          {},
	"fob":                            {"internal/wiegand"},
	"keypad":                         {"internal/wiegand"},
	"device":                         {"contract", "firmware", "internal/weekly", "offline", "store", "trust"},
	"sync/mqttlink":                  {"contract", "store"},
	"console":                        {"contract", "device", "fob", "store"},
	"cmd/democloud":                  {"internal/democloud"},
	"cmd/fleetsim":                   {"*"},
	"cmd/smartbench":                 {"*"},
	"cmd/smartboxd":                  {"*"},

	"internal/atomicfile": {},
	"trust":               {"internal/atomicfile"},
	"firmware":            {"contract", "internal/atomicfile", "trust"},
}

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("only %d packages listed", len(pkgs))
	}
	return pkgs
}

func TestImportLayers(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		ok, known := allowed[rel]
		if !known {
			t.Errorf("%s: not in the layer table", rel)
			continue
		}
		if slices.Contains(ok, "*") {
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				if strings.HasPrefix(imp, "periph.io/x/host") {
					t.Errorf("%s imports %s: only cmd/ may", rel, imp)
				}
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s, which its layer does not allow", rel, dep)
			}
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", p.ImportPath)
		}
		if p.Name == "sync" {
			t.Errorf("%s is named sync, shadowing the standard library", p.ImportPath)
		}
	}
}
