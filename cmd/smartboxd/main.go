// Command smartboxd is the SmartBox daemon: it reads fobs and keypad codes,
// opens bins, keeps the box's state and syncs it with the cloud.
//
//	smartboxd -config FILE          run until SIGINT or SIGTERM
//	smartboxd -config FILE -check   validate the config and exit
//	smartboxd -config FILE identity print the box's seal_key (made on first use)
//	smartboxd keygen -out FILE      make a command signing key pair (-release: a release key)
//	smartboxd release sign -key K -version V FILE   print FILE's manifest, write FILE.manifest
//	smartboxd -version              print the version
//	smartboxd -config FILE offline-code -key-file F -key-id K -mode pickup -hours 24 [-start T]
//	                                print an offline code (contract §8)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"smartboxd/firmware"
	"smartboxd/internal/config"
)

// stdin is where -key-file - reads from.
var stdin io.Reader = os.Stdin

// version is stamped at build time: -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit status with the message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if err.Error() != "" {
		fmt.Fprintln(os.Stderr, "smartboxd:", err)
	}
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "keygen" {
		return keygenCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "release" {
		return releaseCommand(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("smartboxd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the config file (YAML)")
	check := fs.Bool("check", false, "validate the config and exit: 0 if valid, 1 with one line per problem")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: errors.New("")}
	}
	if *showVersion {
		fmt.Fprintln(stdout, "smartboxd", version)
		return nil
	}
	if *path == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("-config is required")}
	}
	if !*check && fs.NArg() == 0 {
		// Before anything opens: newer firmware runs in this process's
		// place (contract §11).
		handover(*path, args, stderr)
	}
	cfg, err := config.Load(*path)
	if err == nil {
		err = checkHardware(cfg)
	}
	if err != nil {
		var probs *config.Problems
		if errors.As(err, &probs) {
			// One line per problem, each naming its field, and nothing else.
			for _, p := range *probs {
				fmt.Fprintln(stderr, p.String())
			}
			return &exitError{code: 1, err: errors.New("")}
		}
		return &exitError{code: 1, err: err}
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return nil
	}
	if rest := fs.Args(); len(rest) > 0 && rest[0] == "offline-code" {
		return offlineCode(cfg, rest[1:], stdin, stdout, stderr)
	}
	if rest := fs.Args(); len(rest) > 0 {
		switch rest[0] {
		case "identity":
			return identityCommand(cfg, rest[1:], stdout)
		}
		return dbCommand(cfg, rest, stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = serve(ctx, cfg, stderr)
	if errors.Is(err, errRelaunch) {
		stop()
		return firmware.Relaunch(args)
	}
	return err
}
