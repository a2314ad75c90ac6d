package mqtttest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rabbitScriptTimeout bounds one run of .ci/rabbitmq-cluster.sh. Installing
// rabbitmq-server and booting three nodes on a busy two-core machine takes
// a minute or two; a node's own start is bounded by the script.
const rabbitScriptTimeout = 12 * time.Minute

// ErrRabbitUnavailable is returned when rabbitmq-server is not installed and
// cannot be installed here (not root, no apt-get, no package archive).
var ErrRabbitUnavailable = errors.New("mqtttest: rabbitmq-server is not available")

// ErrNoRabbitNode is returned when a node index is out of range.
var ErrNoRabbitNode = errors.New("mqtttest: no such rabbitmq node")

// RabbitCluster is a RabbitMQ cluster with its MQTT plugin, run on loopback
// ports by .ci/rabbitmq-cluster.sh. Nodes are numbered from 0 in the Go API
// (rabbit-1@localhost is node 0). It needs no testing.TB, so a fleet
// simulator can run one too; its methods may be called from any goroutine.
type RabbitCluster struct {
	script string
	dir    string
	names  []string
	mqtt   []int

	mu sync.Mutex // serialises runs of the script
}

// StartRabbitCluster starts a cluster of nodes nodes (1 to 6; MQTT needs a
// majority up, so use 3 or 5 for failover) with its files in dir, which it
// creates. It installs rabbitmq-server first when it is missing; when that
// is impossible the error wraps ErrRabbitUnavailable. A cluster that fails
// to start is stopped again. Call Stop when done.
func StartRabbitCluster(dir string, nodes int) (*RabbitCluster, error) {
	if nodes < 1 || nodes > 6 {
		return nil, fmt.Errorf("mqtttest: a rabbitmq cluster has 1 to 6 nodes, not %d", nodes)
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mqtttest: rabbitmq cluster directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("mqtttest: rabbitmq cluster directory: %w", err)
	}
	if out, err := runScript(filepath.Join(root, ".ci", "install-rabbitmq.sh")); err != nil {
		return nil, fmt.Errorf("%w: .ci/install-rabbitmq.sh: %w\n%s", ErrRabbitUnavailable, err, out)
	}
	c := &RabbitCluster{script: filepath.Join(root, ".ci", "rabbitmq-cluster.sh"), dir: abs}
	if out, err := c.run("start", abs, strconv.Itoa(nodes)); err != nil {
		_, _ = c.run("stop", abs)
		return nil, fmt.Errorf("mqtttest: start rabbitmq cluster: %w\n%s", err, out)
	}
	if err := c.readEnv(nodes); err != nil {
		_, _ = c.run("stop", abs)
		return nil, err
	}
	return c, nil
}

// URLs returns each node's MQTT address, tcp://127.0.0.1:PORT, by node.
func (c *RabbitCluster) URLs() []string {
	urls := make([]string, len(c.mqtt))
	for i, p := range c.mqtt {
		urls[i] = "tcp://127.0.0.1:" + strconv.Itoa(p)
	}
	return urls
}

// NodeName returns node i's Erlang node name, rabbit-<i+1>@localhost.
func (c *RabbitCluster) NodeName(i int) string {
	if i < 0 || i >= len(c.names) {
		return ""
	}
	return c.names[i]
}

// Dir returns the cluster's directory: cluster.env, the Erlang cookie, and
// node-N/ with each node's configuration, database and logs.
func (c *RabbitCluster) Dir() string { return c.dir }

// Kill ends node i's Erlang VM with SIGKILL, as a crash or power loss would,
// and waits until it is gone. Its clients' connections drop with it.
func (c *RabbitCluster) Kill(i int) error {
	if err := c.check(i); err != nil {
		return err
	}
	if out, err := c.run("kill-node", c.dir, strconv.Itoa(i+1)); err != nil {
		return fmt.Errorf("mqtttest: kill %s: %w\n%s", c.names[i], err, out)
	}
	return nil
}

// Start starts node i again after Kill, with its database, on its ports, and
// waits until it has rejoined the cluster and accepts MQTT connections.
func (c *RabbitCluster) Start(i int) error {
	if err := c.check(i); err != nil {
		return err
	}
	if out, err := c.run("start-node", c.dir, strconv.Itoa(i+1)); err != nil {
		return fmt.Errorf("mqtttest: start %s: %w\n%s", c.names[i], err, out)
	}
	return nil
}

// StartAll starts every node that is not running, all at once, and waits
// until each accepts MQTT connections: after the whole cluster went down
// the nodes must boot together, since each waits for its peers' tables.
func (c *RabbitCluster) StartAll() error {
	if out, err := c.run("start-nodes", c.dir); err != nil {
		return fmt.Errorf("mqtttest: start every node: %w\n%s", err, out)
	}
	return nil
}

// Ctl runs rabbitmqctl with args against node i and returns its output, for
// looking at queues, connections and policies.
func (c *RabbitCluster) Ctl(i int, args ...string) (string, error) {
	if err := c.check(i); err != nil {
		return "", err
	}
	out, err := c.run(append([]string{"ctl", c.dir, strconv.Itoa(i + 1)}, args...)...)
	if err != nil {
		return out, fmt.Errorf("mqtttest: rabbitmqctl %s on %s: %w\n%s", strings.Join(args, " "), c.names[i], err, out)
	}
	return out, nil
}

// Stop stops every node and the cluster's epmd and waits until none of the
// cluster's processes is left. The directory stays, with its logs.
func (c *RabbitCluster) Stop() error {
	if out, err := c.run("stop", c.dir); err != nil {
		return fmt.Errorf("mqtttest: stop rabbitmq cluster: %w\n%s", err, out)
	}
	return nil
}

// Log returns node i's RabbitMQ log so far.
func (c *RabbitCluster) Log(i int) string {
	if c.check(i) != nil {
		return ""
	}
	data, _ := os.ReadFile(filepath.Join(c.dir, "node-"+strconv.Itoa(i+1), "log", c.names[i]+".log"))
	return string(data)
}

func (c *RabbitCluster) check(i int) error {
	if i < 0 || i >= len(c.names) {
		return fmt.Errorf("%w: %d (the cluster has %d)", ErrNoRabbitNode, i, len(c.names))
	}
	return nil
}

func (c *RabbitCluster) run(args ...string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return runScript(c.script, args...)
}

// readEnv reads the node names and MQTT ports from the script's cluster.env.
func (c *RabbitCluster) readEnv(nodes int) error {
	path := filepath.Join(c.dir, "cluster.env")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("mqtttest: read rabbitmq cluster.env: %w", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	c.names = make([]string, nodes)
	c.mqtt = make([]int, nodes)
	for i := range nodes {
		key := "NODE_" + strconv.Itoa(i+1) + "_"
		c.names[i] = env[key+"NAME"]
		p, err := strconv.Atoi(env[key+"MQTT"])
		if c.names[i] == "" || err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("mqtttest: %s has no valid %sNAME and %sMQTT", path, key, key)
		}
		c.mqtt[i] = p
	}
	return nil
}

// runScript runs a bash script in its own process group, which is killed
// whole when the script overruns rabbitScriptTimeout.
func runScript(script string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rabbitScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A daemon the script left running must not keep Wait waiting for
	// its output pipe.
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // the script succeeded; only its output was cut short
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", rabbitScriptTimeout, err)
	}
	return out.String(), err
}
