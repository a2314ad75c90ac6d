package config

import (
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// ErrNoDataDir is returned by DataDirOf for a file without a data_dir.
var ErrNoDataDir = errors.New("config: no data_dir")

// DataDirOf reads only data_dir from the config file at path, leniently:
// the installed binary hands over to newer firmware (contract §11) before
// it validates the file, which may use fields only the newer version
// knows.
func DataDirOf(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	var c struct {
		DataDir string `yaml:"data_dir"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("config: %s: %w", path, err)
	}
	if c.DataDir == "" {
		return "", fmt.Errorf("%w in %s", ErrNoDataDir, path)
	}
	return c.DataDir, nil
}
