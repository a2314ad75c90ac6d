// Command democloud runs the demo's stand-in cloud: an embedded MQTT broker
// that provisions a simulated box, acks its events and prints them.
//
//	democloud [-listen ADDR] [-box ID] [-prefix P] [-provision=false]
//	          [-update FILE -update-version V [-update-listen ADDR]]
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

	"smartboxd/internal/democloud"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "democloud:", err)
		}
		os.Exit(1)
	}
}

// run serves the demo cloud until SIGINT or SIGTERM; a stop by signal is
// not an error.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("democloud", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:18830", "the broker's address")
	box := fs.String("box", "demo-box", "the box to serve")
	prefix := fs.String("prefix", "smartbox", "the topic prefix")
	provision := fs.Bool("provision", true, "send the demo keys and access codes when the box comes online")
	update := fs.String("update", "", "a smartboxd binary to push to the box as a firmware update")
	updateVersion := fs.String("update-version", "", "the version of -update, MAJOR.MINOR.PATCH")
	updateListen := fs.String("update-listen", "127.0.0.1:18831", "where -update is served over HTTP (loopback)")
	if err := fs.Parse(args); err != nil {
		return errors.New("")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := democloud.Start(democloud.Config{Listen: *listen, BoxID: *box, Prefix: *prefix, Provision: *provision, Out: stdout,
		Update: democloud.Update{File: *update, Version: *updateVersion, Listen: *updateListen}})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}
