// Package console is the technician console: an authenticated, audited line
// protocol on a serial port.
//
// # Protocol
//
// One Serve call is one session on one stream. The console greets with a
// line naming the box and shows a prompt: "smartbox> " while logged out,
// "smartbox(BOX-ID)# " while logged in. The prompt ends no line; the answer
// to a line starts with CR LF, so every answer line, and its last line in
// particular, starts at the beginning of a line. Every answer ends with a
// line "OK" or "ERR <code>: <message>". An empty line gets only a new
// prompt.
//
// The console does not echo what it receives: a serial terminal shows what
// is typed with its local echo, and the technician PIN is never sent back.
//
// # Line editing and noise
//
// A line ends at CR or LF; CR LF (and CR NUL, as telnet sends) counts as one
// end. Backspace (0x08) and DEL (0x7f) erase the last byte, Ctrl-U erases the
// line, Ctrl-C abandons it (the console answers "^C" and a new prompt), a
// tab counts as a space. Any other control byte and any byte above 0x7e is
// noise: it never enters the line, and a line that held noise is refused
// whole with ERR console.noise rather than run without the bytes that
// were dropped (a dropped byte could turn "open 1?2" into "open 12"). A line
// longer than 256 bytes is refused with ERR console.line_too_long; what
// follows of it up to the next line end is discarded.
//
// # Login, lockout, idle logout
//
// Before a login only "help" and "login PIN" work; anything else is
// ERR console.login_required. The PIN is checked against its bcrypt hash on
// the session's goroutine, then reported to the box (Box.ConsoleLogin),
// which keeps the lockout, escalating like the keypad's, and records every
// attempt as a console.login event. While the console is locked out every
// attempt is refused with ERR console.locked_out, the right PIN too. A
// "login" while logged in logs out first. A session logged in for
// Config.IdleLogout (default 5 minutes) without a command line is logged out
// with a line "logged out (idle)"; empty, noise and over-long lines do not
// keep a session alive. Closing the stream ends the session, and the next
// session starts logged out.
//
// # Audit
//
// Every command line of a logged-in session is recorded with Box.Audit as a
// console.command event before it runs; a command that cannot be recorded
// does not run (logout excepted). The event holds the command's words,
// lower-cased command word first, with secrets taken out: the arguments of
// "sim key" become "***", so does any other argument of four or more
// digits only (a code or a PIN typed in the wrong place), save the fob
// serial of "sim fob". An unknown command is recorded by its word alone, or
// "***" when that word holds a digit. Login attempts are recorded by the
// box's own console.login events, never with the PIN. Noise and over-long
// lines run nothing and are not recorded.
//
// # Error codes
//
// Errors of the box (*contract.Error) print their own code. The console's own
// are the contract's CodeConsole* codes; any other failure prints as
// "ERR internal: ...".
package console
