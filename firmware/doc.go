// Package firmware updates the daemon itself (contract §11): it checks a
// release's signed manifest, downloads the binary with resume, verifies
// it, installs it for a trial start, and at the start of the installed
// binary decides which binary runs — committing a trial that proved
// itself and rolling back one that did not.
//
// # Manifest and versions
//
// A manifest is a compact JWS (EdDSA, see package trust) by one of the
// config's trust.release_keys — never a command key — whose payload is
// exactly {"version":"1.4.0","sha256":"<64 lower-case hex>","size":N}.
// Versions are MAJOR.MINOR.PATCH, three decimal numbers without leading
// zeros, compared number by number; suffixes are refused. A running
// version that does not parse (a development build, "dev") is older than
// every release. An update must be newer than the running version and not
// below the floor, the highest version the box ever committed (kept in the
// box's database, beside its state).
//
// # The firmware directory
//
// Everything lives in <data_dir>/firmware:
//
//	state.json                          which version is committed, previous, on trial; trial starts; the last rollback
//	smartboxd-1.4.0                     a binary, mode 0755: the committed, previous or trial version
//	smartboxd-1.5.0-<sha256 prefix>.partial   a download in progress (mode 0600)
//
// A download goes to its .partial file and resumes with an HTTP range
// request from the bytes the file holds (http:// only to a loopback host,
// else https://). It is never longer than the manifest's size, and is
// installed only once the whole file has that size and SHA-256: renamed to
// its binary and made the trial in the state file, which is written
// atomically and synced (internal/atomicfile). Nothing outside this
// directory is written by a download, and a failed one leaves the binaries
// that ran before as they were.
//
// # Hand-over, trial and rollback
//
// The binary systemd starts (the installed one, which may sit on a
// read-only /usr) calls Handover first thing. Dir.Plan picks the newest of
// the trial, the committed version and itself, and Handover execs the
// chosen binary in its place (the pid systemd watches and NOTIFY_SOCKET
// stay), with EnvHandover set so the chosen binary never hands over again.
// A trial's starts are counted in the state file before each exec; a trial
// started MaxTrialStarts times without being committed — it exited, hung
// (the watchdog then restarts the service) or missed its deadline — is
// rolled back: its binary is removed and the rollback recorded, for the
// version that runs instead to report. A running trial is committed when,
// within firmware.trial_s (WaitHealthy), it is online and has had one
// events/ack from the cloud; the committed version's predecessor stays as
// the previous version, older binaries are removed.
package firmware
