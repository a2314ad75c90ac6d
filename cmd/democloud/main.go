// Command democloud runs the demo's stand-in cloud: an embedded MQTT broker
// that provisions a simulated box, acks its events and prints them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"smartboxd/internal/democloud"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18830", "the broker's address")
	box := flag.String("box", "demo-box", "the box to serve")
	prefix := flag.String("prefix", "smartbox", "the topic prefix")
	provision := flag.Bool("provision", true, "send the demo keys and access codes when the box comes online")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := democloud.Start(democloud.Config{Listen: *listen, BoxID: *box, Prefix: *prefix, Provision: *provision, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "democloud:", err)
		os.Exit(1)
	}
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "democloud:", err)
		os.Exit(1)
	}
}
