package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"smartboxd/contract"
)

// command is one console command of a logged-in session.
type command struct {
	sim bool // only with the sim backend
	// look commands only read: they still answer when the audit cannot be
	// written (a full disk), so the technician can see what is wrong.
	look bool
	run  func(s *session, ctx context.Context, args []string) error
}

// commands are the commands of a logged-in session, by word; login, logout
// and help are handled apart.
var commands = map[string]command{
	"status":  {look: true, run: (*session).status},
	"bins":    {look: true, run: (*session).bins},
	"open":    {run: (*session).open},
	"keys":    {look: true, run: (*session).keys},
	"codes":   {look: true, run: (*session).codes},
	"events":  {look: true, run: (*session).events},
	"sync":    {look: true, run: (*session).sync},
	"readers": {look: true, run: (*session).readers},
	"display": {look: true, run: (*session).display},
	"sim":     {sim: true, run: (*session).sim},

	"clear-lockout": {run: (*session).clearLockout},
}

// helpLines is the help command's answer, in order.
var helpLines = []struct {
	usage, help string
	sim         bool
}{
	{"login PIN", "log in", false},
	{"logout", "log out", false},
	{"help", "this list", false},
	{"status", "the box, its clock, the cloud link and the outbox", false},
	{"bins", "the bins and what they hold", false},
	{"open BIN", "unlock a bin", false},
	{"keys", "the keys", false},
	{"codes", fmt.Sprintf("the access codes, at most %d (never the codes)", maxCodes), false},
	{"events [N]", fmt.Sprintf("the last N events (default %d, at most %d)", defaultEvents, maxEvents), false},
	{"sync", "the cloud link", false},
	{"readers", "the fob readers: frames read and dropped", false},
	{"clear-lockout", "end the keypad's lockout and its escalation", false},
	{"display", "what the guest display and the bins' LEDs show", false},
	{"sim key DIGITS", "press keypad keys: 0-9, * clears, # submits", true},
	{"sim fob BIN SERIAL", "a fob (4-20 hex digits) appears at a bin's reader", true},
	{"sim nofob BIN", "the fob leaves a bin's reader", true},
	{"sim door BIN open|closed", "a bin's door opens or closes", true},
}

const (
	maxCodes      = 50
	defaultEvents = 20
	maxEvents     = 500
)

// run answers one line of words.
func (s *session) run(ctx context.Context, words []string) {
	word := strings.ToLower(words[0])
	args := words[1:]
	if word == "login" {
		s.loginCmd(ctx, args)
		return
	}
	if !s.loggedIn {
		if word == "help" {
			s.help()
			s.ok()
			return
		}
		s.fail(contract.Errorf(contract.CodeConsoleLoginRequired, "log in first"))
		return
	}
	s.touch()
	cmd, known := commands[word]
	if known && cmd.sim && s.c.cfg.Sim == nil {
		known = false
	}
	known = known || word == "help" || word == "logout"
	err := s.c.box.Audit(ctx, auditText(word, args, known))
	if word == "logout" {
		// Logging out is safe even when it could not be recorded.
		s.logout()
		s.c.log.Info("console logged out")
		s.printf("logged out")
		s.ok()
		return
	}
	if err != nil && (known && cmd.look || word == "help") {
		// Reading changes nothing: answer, and say it went unrecorded.
		s.printf("warning: not recorded: %v", err)
		err = nil
	}
	if err != nil {
		s.fail(err)
		return
	}
	switch {
	case word == "help":
		s.help()
	case !known:
		if strings.ContainsAny(word, "0123456789") {
			// Perhaps a code or the PIN typed in the wrong place: not shown.
			s.fail(contract.Errorf(contract.CodeConsoleUnknown, "unknown command; type help"))
		} else {
			s.fail(contract.Errorf(contract.CodeConsoleUnknown, "unknown command %q; type help", clean(word, 32)))
		}
		return
	default:
		if err := cmd.run(s, ctx, args); err != nil {
			s.fail(err)
			return
		}
	}
	s.ok()
}

// auditText is what the console.command event records of a command line:
// its words without secrets.
func auditText(word string, args []string, known bool) string {
	if !known {
		if strings.ContainsAny(word, "0123456789") {
			return "***"
		}
		return word
	}
	out := []string{word}
	for i, a := range args {
		switch {
		case word == "sim" && i >= 1 && strings.EqualFold(args[0], "key"):
			a = "***"
		case word == "sim" && i == 2 && strings.EqualFold(args[0], "fob"):
			// A fob serial is no secret.
		case len(a) >= 4 && allDigits(a):
			a = "***"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (s *session) help() {
	if !s.loggedIn {
		s.printf("log in first: before a login only help and login work")
	}
	tw := s.table()
	for _, h := range helpLines {
		if h.sim && s.c.cfg.Sim == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", h.usage, h.help)
	}
	s.endTable(tw)
}

func (s *session) loginCmd(ctx context.Context, args []string) {
	if s.loggedIn {
		s.logout()
	}
	if len(args) != 1 {
		s.fail(contract.Errorf(contract.CodeConsoleUsage, "usage: login PIN"))
		return
	}
	ok := s.c.pinOK(args[0])
	res, err := s.c.box.ConsoleLogin(ctx, ok)
	switch {
	case err != nil:
		s.fail(err)
	case res.OK:
		s.c.log.Info("console login")
		s.login()
		s.printf("logged in to %s", clean(s.c.cfg.BoxID, 64))
		s.ok()
	case res.LockedOut:
		s.c.log.Warn("console login refused: locked out", "until", res.Until)
		s.fail(contract.Errorf(contract.CodeConsoleLockedOut, "try again after %s", s.when(res.Until)))
	default:
		s.c.log.Warn("console login: wrong PIN")
		s.fail(contract.Errorf(contract.CodeConsolePINInvalid, "wrong PIN"))
	}
}

// when says when a lockout ends: the time and how long that is from now.
func (s *session) when(t time.Time) string {
	if t.IsZero() {
		return "a while"
	}
	left := max(s.c.clock.Until(t), 0)
	secs := (left + time.Second - 1) / time.Second * time.Second
	return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), secs)
}

// ---- tables ----

func (s *session) table() *tabwriter.Writer {
	return tabwriter.NewWriter(&crlf{s}, 0, 0, 2, ' ', 0)
}

func (s *session) endTable(tw *tabwriter.Writer) { tw.Flush() }

// crlf turns the tabwriter's LF line ends into CR LF and trims the padding
// at the end of a line.
type crlf struct{ s *session }

func (w *crlf) Write(p []byte) (int, error) {
	for _, ln := range strings.SplitAfter(string(p), "\n") {
		if body, ok := strings.CutSuffix(ln, "\n"); ok {
			w.s.out.WriteString(strings.TrimRight(body, " "))
			w.s.out.WriteString("\r\n")
		} else {
			w.s.out.WriteString(ln)
		}
	}
	return len(p), nil
}

// row writes one table row of cells, each cleaned.
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		if i > 0 {
			tw.Write([]byte{'\t'})
		}
		tw.Write([]byte(clean(c, 40)))
	}
	tw.Write([]byte{'\n'})
}

func orDash(p *string) string {
	if p == nil || *p == "" {
		return "-"
	}
	return *p
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// ---- commands ----

func (s *session) status(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: status")
	}
	st, err := s.c.box.State()
	if err != nil {
		return err
	}
	cfg := s.c.cfg
	tw := s.table()
	row(tw, "box", cfg.BoxID)
	row(tw, "version", cfg.Version)
	row(tw, "boot id", cfg.BootID)
	row(tw, "uptime", s.c.clock.Since(s.c.started).Truncate(time.Second).String())
	row(tw, "time", stamp(s.c.clock.Now()))
	clock := "synced"
	if !st.Clock.Synced {
		clock = "NOT synced: time-bound codes may fail closed"
	}
	row(tw, "clock", clock)
	db := "ok"
	if !st.Store.OK {
		db = "REFUSING WRITES: no bin opens"
	}
	row(tw, "database", db)
	row(tw, "mqtt", s.link())
	depth, oldest := st.Outbox.Depth, st.Outbox.OldestAt
	if cfg.Outbox != nil {
		o, err := cfg.Outbox()
		if err != nil {
			return err
		}
		depth, oldest = o.Depth, nil
		if !o.OldestAt.IsZero() {
			oldest = &o.OldestAt
		}
	}
	outbox := fmt.Sprintf("%d events", depth)
	if oldest != nil {
		outbox += ", oldest " + stamp(*oldest)
	}
	row(tw, "outbox", outbox)
	counts := map[string]int{}
	for _, b := range st.Bins {
		counts[b.State]++
	}
	row(tw, "bins", fmt.Sprintf("%d: %d empty, %d occupied, %d open", len(st.Bins), counts["empty"], counts["occupied"], counts["open"]))
	row(tw, "keys", strconv.Itoa(st.Keys))
	row(tw, "access codes", strconv.Itoa(st.AccessCodes))
	row(tw, "key codes", map[bool]string{true: "enabled", false: "disabled"}[st.Settings.KeyCodesEnabled])
	s.endTable(tw)
	if !st.Store.OK {
		s.printf("database error: %s", clean(st.Store.Error, 200))
	}
	return nil
}

// link is the cloud link in a few words.
func (s *session) link() string {
	if s.c.cfg.Sync == nil {
		return "off (no broker configured)"
	}
	st := s.c.cfg.Sync()
	if st.Connected {
		return "connected to " + st.Broker
	}
	msg := "disconnected from " + st.Broker
	if st.LastError != "" {
		msg += " (" + st.LastError + ")"
	}
	return msg
}

func (s *session) bins(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: bins")
	}
	st, err := s.c.box.State()
	if err != nil {
		return err
	}
	tw := s.table()
	row(tw, "BIN", "STATE", "KEY", "FOB", "LOCK", "DOOR")
	for _, b := range st.Bins {
		row(tw, strconv.Itoa(b.ID), b.State, orDash(b.KeyID), orDash(b.Fob), b.Lock, b.Door)
	}
	s.endTable(tw)
	return nil
}

// binArg reads a bin number.
func binArg(a, usage string) (int, error) {
	n, err := strconv.Atoi(a)
	if err != nil {
		return 0, contract.Errorf(contract.CodeConsoleUsage, "usage: %s (BIN is a bin number)", usage)
	}
	return n, nil
}

// checkBin refuses a bin the box does not have.
func (s *session) checkBin(n int) error {
	st, err := s.c.box.State()
	if err != nil {
		return err
	}
	for _, b := range st.Bins {
		if b.ID == n {
			return nil
		}
	}
	return contract.Errorf(contract.CodeBinNotFound, "no bin %d", n)
}

func (s *session) open(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: open BIN")
	}
	n, err := binArg(args[0], "open BIN")
	if err != nil {
		return err
	}
	if err := s.c.box.OpenBin(ctx, n, "console"); err != nil {
		return err
	}
	s.c.log.Info("console opened a bin", "bin", n)
	s.printf("bin %d unlocked", n)
	return nil
}

func (s *session) clearLockout(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: clear-lockout")
	}
	res, err := s.c.box.ClearLockout(ctx)
	if err != nil {
		return err
	}
	s.c.log.Info("console cleared the keypad lockout", "was_locked_out", res.WasLockedOut, "level", res.Level)
	state := "was not locked out"
	if res.WasLockedOut {
		state = "was locked out"
	}
	s.printf("keypad lockout cleared: it %s, escalation level %d, %d entries refused unreported", state, res.Level, res.Rejected)
	return nil
}

func (s *session) keys(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: keys")
	}
	keys, err := s.c.box.Keys()
	if err != nil {
		return err
	}
	tw := s.table()
	row(tw, "KEY", "NAME", "FOB", "BIN", "VIRTUAL")
	for _, k := range keys {
		bin := "-"
		if k.Bin != nil {
			bin = strconv.Itoa(*k.Bin)
		}
		row(tw, k.KeyID, k.Name, orDash(k.SerialNumber), bin, yesNo(k.Virtual))
	}
	s.endTable(tw)
	s.printf("%d keys", len(keys))
	return nil
}

func (s *session) codes(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: codes")
	}
	codes, total, err := s.c.box.AccessCodes(maxCodes)
	if err != nil {
		return err
	}
	tw := s.table()
	row(tw, "ID", "NAME", "TYPE", "STATUS", "WINDOW", "KEY", "ACTION")
	for i, a := range codes {
		if i == maxCodes {
			break
		}
		window := "-"
		if a.StartsAt != nil || a.EndsAt != nil {
			window = timeOrDash(a.StartsAt) + ".." + timeOrDash(a.EndsAt)
		}
		key := a.KeyID
		if key == "" {
			key = "-"
		}
		row(tw, a.AccessCodeID, a.Name, a.Type, a.Status, window, key, a.Action)
	}
	s.endTable(tw)
	shown := min(len(codes), maxCodes)
	if shown < total {
		s.printf("%d of %d access codes shown", shown, total)
	} else {
		s.printf("%d access codes", total)
	}
	return nil
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04Z")
}

func (s *session) events(ctx context.Context, args []string) error {
	n := defaultEvents
	switch len(args) {
	case 0:
	case 1:
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 {
			return contract.Errorf(contract.CodeConsoleUsage, "usage: events [N], N from 1 to %d", maxEvents)
		}
		n = min(v, maxEvents)
	default:
		return contract.Errorf(contract.CodeConsoleUsage, "usage: events [N], N from 1 to %d", maxEvents)
	}
	if s.c.cfg.Events == nil {
		return contract.Errorf(contract.CodeConsoleUnavailable, "no event history")
	}
	evs, err := s.c.cfg.Events(n)
	if err != nil {
		return err
	}
	tw := s.table()
	row(tw, "SEQ", "TIME", "TYPE", "DATA")
	for _, e := range evs {
		data := string(e.Data)
		var compact bytes.Buffer
		if json.Compact(&compact, e.Data) == nil {
			data = compact.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.Seq, e.At.UTC().Format("2006-01-02T15:04:05.000Z"), clean(e.Type, 40), clean(data, 160))
	}
	s.endTable(tw)
	return nil
}

func (s *session) sync(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: sync")
	}
	tw := s.table()
	if s.c.cfg.Sync == nil {
		row(tw, "mqtt", "off (no broker configured)")
	} else {
		st := s.c.cfg.Sync()
		row(tw, "connected", yesNo(st.Connected))
		row(tw, "broker", st.Broker)
		row(tw, "last ack", strconv.FormatUint(st.LastAck, 10))
		row(tw, "in flight", strconv.Itoa(st.InFlight))
		row(tw, "published", strconv.FormatUint(st.Published, 10))
		row(tw, "reconnects", strconv.Itoa(st.Reconnects))
		lastErr := st.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		row(tw, "last error", lastErr)
	}
	if s.c.cfg.Outbox != nil {
		o, err := s.c.cfg.Outbox()
		if err != nil {
			return err
		}
		row(tw, "outbox", fmt.Sprintf("%d events", o.Depth))
		row(tw, "last seq", strconv.FormatUint(o.LastSeq, 10))
		row(tw, "acked seq", strconv.FormatUint(o.Acked, 10))
	}
	s.endTable(tw)
	return nil
}

func (s *session) readers(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: readers")
	}
	if s.c.cfg.Readers == nil {
		s.printf("no readers")
		return nil
	}
	stats := s.c.cfg.Readers()
	if len(stats) == 0 {
		s.printf("no readers")
		return nil
	}
	tw := s.table()
	row(tw, "NAME", "TYPE", "BIN", "FRAMES", "BAD", "NOISE", "REOPENS", "PRESENT", "FAULT")
	for _, r := range stats {
		fault := "-"
		switch {
		case r.Faulted:
			fault = "FAULT: " + r.LastError
		case r.LastError != "":
			fault = "ok (last: " + r.LastError + ")"
		}
		present := r.Present
		if present == "" {
			present = "-"
		}
		row(tw, r.Name, r.Type, strconv.Itoa(r.Bin), strconv.FormatUint(r.Frames, 10),
			strconv.FormatUint(r.BadChecksum, 10), strconv.FormatUint(r.Noise, 10),
			strconv.FormatUint(r.Reopens, 10), present, fault)
	}
	s.endTable(tw)
	return nil
}

// ---- sim ----

const simUsage = "sim key DIGITS | sim fob BIN SERIAL | sim nofob BIN | sim door BIN open|closed"

func (s *session) sim(ctx context.Context, args []string) error {
	sim := s.c.cfg.Sim
	if len(args) == 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: %s", simUsage)
	}
	sub, args := strings.ToLower(args[0]), args[1:]
	switch sub {
	case "key":
		if len(args) != 1 || !keypadKeys(args[0]) {
			return contract.Errorf(contract.CodeConsoleUsage, "usage: sim key DIGITS (0-9, *, #)")
		}
		if sim.Press == nil {
			return contract.Errorf(contract.CodeConsoleUnavailable, "no simulated keypad")
		}
		for _, r := range args[0] {
			sim.Press(r)
		}
		if err := s.c.flush(ctx); err != nil {
			return err
		}
		s.printf("%d keys pressed", len(args[0]))
	case "fob":
		if len(args) != 2 {
			return contract.Errorf(contract.CodeConsoleUsage, "usage: sim fob BIN SERIAL")
		}
		n, err := binArg(args[0], "sim fob BIN SERIAL")
		if err != nil {
			return err
		}
		serial, ok := fobSerial(args[1])
		if !ok {
			return contract.Errorf(contract.CodeKeySerialInvalid, "a fob serial is 4 to 20 hex digits")
		}
		if err := s.checkBin(n); err != nil {
			return err
		}
		s.c.box.FobPresent(n, serial)
		if err := s.c.flush(ctx); err != nil {
			return err
		}
		s.printf("fob %s at bin %d", serial, n)
	case "nofob":
		if len(args) != 1 {
			return contract.Errorf(contract.CodeConsoleUsage, "usage: sim nofob BIN")
		}
		n, err := binArg(args[0], "sim nofob BIN")
		if err != nil {
			return err
		}
		if err := s.checkBin(n); err != nil {
			return err
		}
		s.c.box.FobAbsent(n)
		if err := s.c.flush(ctx); err != nil {
			return err
		}
		s.printf("no fob at bin %d", n)
	case "door":
		if len(args) != 2 {
			return contract.Errorf(contract.CodeConsoleUsage, "usage: sim door BIN open|closed")
		}
		n, err := binArg(args[0], "sim door BIN open|closed")
		if err != nil {
			return err
		}
		var open bool
		switch strings.ToLower(args[1]) {
		case "open":
			open = true
		case "closed", "close":
		default:
			return contract.Errorf(contract.CodeConsoleUsage, "usage: sim door BIN open|closed")
		}
		if sim.Door == nil {
			return contract.Errorf(contract.CodeConsoleUnavailable, "no simulated doors")
		}
		if err := s.checkBin(n); err != nil {
			return err
		}
		if err := sim.Door(n, open); err != nil {
			return err
		}
		if err := s.c.flush(ctx); err != nil {
			return err
		}
		s.printf("door %d %s", n, map[bool]string{true: "open", false: "closed"}[open])
	default:
		return contract.Errorf(contract.CodeConsoleUsage, "usage: %s", simUsage)
	}
	return nil
}

// keypadKeys reports whether s is keys a keypad has.
func keypadKeys(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '*' && c != '#' {
			return false
		}
	}
	return s != ""
}

// fobSerial upper-cases a fob serial and checks it is 4 to 20 hex digits.
func fobSerial(s string) (string, bool) {
	if len(s) < 4 || len(s) > 20 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", false
		}
	}
	return strings.ToUpper(s), true
}

func (s *session) display(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return contract.Errorf(contract.CodeConsoleUsage, "usage: display")
	}
	if s.c.cfg.Display == nil {
		s.printf("no display and no bin LEDs")
		return nil
	}
	d := s.c.cfg.Display()
	switch {
	case d.Type == "":
		s.printf("display: none")
	case d.Fault != "":
		s.printf("display: %s: FAULT: %s", clean(d.Type, 16), clean(d.Fault, 120))
	case d.Text == "":
		s.printf("display: %s: blank", clean(d.Type, 16))
	default:
		s.printf("display: %s: %q", clean(d.Type, 16), clean(d.Text, 16))
	}
	if len(d.LEDs) == 0 {
		s.printf("no bin LEDs")
		return nil
	}
	tw := s.table()
	row(tw, "BIN", "LED")
	for _, l := range d.LEDs {
		row(tw, strconv.Itoa(l.Bin), l.State)
	}
	s.endTable(tw)
	return nil
}
