package device

import (
	"context"
	"errors"
	"fmt"

	"smartboxd/contract"
	"smartboxd/firmware"
	"smartboxd/store"
)

// firmwareStatus is a firmware.status event's data.
func firmwareStatus(version, state string, err error) contract.FirmwareStatus {
	s := contract.FirmwareStatus{Version: version, State: state}
	if err != nil {
		msg := err.Error()
		var coded *contract.Error
		if errors.As(err, &coded) {
			msg = coded.Error()
		}
		s.Error = &msg
	}
	return s
}

// cmdFirmwareUpdate takes an update (§11): a manifest by a release key, a
// URL, a version newer than the running one and not below the floor. The
// reply comes once the download is accepted; the download runs on a
// goroutine of its own and reports by firmware.status events. The pending
// update is stored with the reply and its downloading event, so a restart
// resumes it.
func (b *Box) cmdFirmwareUpdate(c *txc, data []byte) (any, error) {
	var d struct {
		Manifest *string `json:"manifest"`
		URL      *string `json:"url"`
	}
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	if d.Manifest == nil || d.URL == nil {
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data.manifest and data.url are required")
	}
	u := b.cfg.Firmware
	if u == nil {
		return nil, contract.Errorf(contract.CodeFirmwareDownloadFailed, "this box takes no firmware updates")
	}
	rec, err := c.tx.Firmware()
	if err != nil {
		return nil, err
	}
	switch {
	case b.fwBusy || rec.Pending != nil:
		return nil, contract.Errorf(contract.CodeFirmwareBusy, "an update is downloading or installing")
	case u.OnTrial():
		return nil, contract.Errorf(contract.CodeFirmwareBusy, "%s is on trial", u.Running())
	}
	m, err := u.Check(*d.Manifest, *d.URL, rec.Floor)
	if err != nil {
		return nil, err
	}
	rec.Pending = &store.FirmwarePending{Manifest: *d.Manifest, URL: *d.URL}
	if err := c.tx.PutFirmware(rec); err != nil {
		return nil, err
	}
	v := m.Version.String()
	if err := c.event(contract.EventFirmwareStatus, firmwareStatus(v, contract.FirmwareDownloading, nil)); err != nil {
		return nil, err
	}
	url := *d.URL
	c.onCommit(func() { b.startDownload(m, url) })
	return firmwareStatus(v, contract.FirmwareDownloading, nil), nil
}

// startDownload runs m's download on a goroutine of its own, which hands
// the outcome to the loop.
func (b *Box) startDownload(m firmware.Manifest, url string) {
	b.fwBusy = true
	ctx := b.runCtx
	b.fwDone.Add(1)
	go func() {
		defer b.fwDone.Done()
		err := b.cfg.Firmware.Download(ctx, m, url)
		select {
		case b.in <- func() { b.downloaded(m, err) }:
		case <-ctx.Done():
		}
	}()
}

// downloaded takes a download's outcome on the loop: a failure is
// reported and forgotten; a verified binary is installed for a trial and
// the daemon relaunched into it.
func (b *Box) downloaded(m firmware.Manifest, err error) {
	if b.runCtx.Err() != nil {
		return // stopping: the next start resumes the download
	}
	v := m.Version.String()
	if err != nil {
		b.firmwareFailed(m, err)
		return
	}
	if err := b.txn(func(c *txc) error {
		return c.event(contract.EventFirmwareStatus, firmwareStatus(v, contract.FirmwareVerified, nil))
	}); err != nil {
		b.log.Error("firmware verified, not recorded", "version", v, "err", err)
	}
	if err := b.cfg.Firmware.Install(m); err != nil {
		b.firmwareFailed(m, err)
		return
	}
	if err := b.txn(func(c *txc) error {
		if err := clearPending(c.tx); err != nil {
			return err
		}
		return c.event(contract.EventFirmwareStatus, firmwareStatus(v, contract.FirmwareInstalled, nil))
	}); err != nil {
		// Installed all the same: the next start records it.
		b.log.Error("firmware installed, not recorded", "version", v, "err", err)
	}
	b.log.Info("firmware installed; relaunching into its trial", "version", v)
	if b.cfg.Relaunch != nil {
		b.cfg.Relaunch()
	}
}

// firmwareFailed reports an update that failed for good and forgets it.
func (b *Box) firmwareFailed(m firmware.Manifest, err error) {
	v := m.Version.String()
	b.log.Warn("firmware update failed", "version", v, "err", err)
	b.cfg.Firmware.Discard(m)
	if terr := b.txn(func(c *txc) error {
		if err := clearPending(c.tx); err != nil {
			return err
		}
		return c.event(contract.EventFirmwareStatus, firmwareStatus(v, contract.FirmwareFailed, err))
	}); terr != nil {
		b.log.Error("firmware failure not recorded", "version", v, "err", terr)
		return // still pending: the next start tries again
	}
	b.fwBusy = false
}

func clearPending(tx *store.Tx) error {
	rec, err := tx.Firmware()
	if err != nil {
		return err
	}
	rec.Pending = nil
	return tx.PutFirmware(rec)
}

// firmwareStart brings the firmware record up to date with what runs, at
// start: a commit or a rollback the last run could not report is reported,
// the floor rises to the committed version, a pending download resumes, and
// a trial says so.
func (b *Box) firmwareStart() {
	u := b.cfg.Firmware
	if u == nil {
		return
	}
	st, err := u.State()
	if err != nil {
		b.log.Error("firmware state unreadable", "err", err)
		return
	}
	running, onTrial := u.Running(), u.OnTrial()
	var resume *firmware.Manifest
	var resumeURL string
	err = b.txn(func(c *txc) error {
		resume = nil
		rec, err := c.tx.Firmware()
		if err != nil {
			return err
		}
		ev := func(s contract.FirmwareStatus) error { return c.event(contract.EventFirmwareStatus, s) }
		if st.Committed != "" && firmware.Newer(st.Committed, rec.Floor) {
			// Committed by the last run, which stopped before it said so.
			rec.Floor = st.Committed
			if err := ev(firmwareStatus(st.Committed, contract.FirmwareCommitted, nil)); err != nil {
				return err
			}
		}
		if !onTrial && firmware.Newer(running, rec.Floor) {
			rec.Floor = running // what runs outside a trial is committed
		}
		if r := st.Rollback; r != nil && r.Seq > rec.Reported {
			rec.Reported = r.Seq
			if err := ev(firmwareStatus(r.Version, contract.FirmwareRolledBack, errors.New(r.Error))); err != nil {
				return err
			}
		}
		if p := rec.Pending; p != nil {
			m, err := firmware.ParseManifest([]byte(p.Manifest), u.ReleaseKeys())
			switch {
			case err != nil:
				rec.Pending = nil
				if err := ev(firmwareStatus("", contract.FirmwareFailed, err)); err != nil {
					return err
				}
			case u.Installed(m.Version.String()):
				rec.Pending = nil
				if err := ev(firmwareStatus(m.Version.String(), contract.FirmwareInstalled, nil)); err != nil {
					return err
				}
			case !firmware.Newer(m.Version.String(), running):
				// A newer binary was installed by hand meanwhile.
				rec.Pending = nil
				coded := contract.Errorf(contract.CodeFirmwareDowngrade, "%s is not newer than the running %s", m.Version, running)
				if err := ev(firmwareStatus(m.Version.String(), contract.FirmwareFailed, coded)); err != nil {
					return err
				}
			default:
				resume, resumeURL = &m, p.URL
			}
		}
		if onTrial {
			if err := ev(firmwareStatus(running, contract.FirmwareTrial, nil)); err != nil {
				return err
			}
		}
		return c.tx.PutFirmware(rec)
	})
	if err != nil {
		b.log.Error("firmware start not recorded", "err", err)
		return
	}
	if resume != nil {
		b.log.Info("firmware download resumes", "version", resume.Version.String())
		b.startDownload(*resume, resumeURL)
	}
}

// CommitFirmware commits the running trial: it is online and was acked in
// time. The state file is written first; the floor and the committed event
// follow in one transaction (a start after a crash in between records
// them).
func (b *Box) CommitFirmware(ctx context.Context) error {
	var err error
	if cerr := b.call(ctx, func() {
		u := b.cfg.Firmware
		if u == nil || !u.OnTrial() {
			err = fmt.Errorf("device: no firmware on trial")
			return
		}
		if err = u.Commit(); err != nil {
			return
		}
		v := u.Running()
		err = b.txn(func(c *txc) error {
			rec, err := c.tx.Firmware()
			if err != nil {
				return err
			}
			if firmware.Newer(v, rec.Floor) {
				rec.Floor = v
			}
			if err := c.tx.PutFirmware(rec); err != nil {
				return err
			}
			return c.event(contract.EventFirmwareStatus, firmwareStatus(v, contract.FirmwareCommitted, nil))
		})
		b.log.Info("firmware committed", "version", v)
	}); cerr != nil {
		return cerr
	}
	return err
}

// TrialFailed records why the running trial failed (it missed its
// deadline), as an event and in the state file, for the rollback that
// follows a second failure to report.
func (b *Box) TrialFailed(ctx context.Context, reason error) error {
	var err error
	if cerr := b.call(ctx, func() {
		u := b.cfg.Firmware
		if u == nil {
			return
		}
		if err = u.NoteFailure(reason.Error()); err != nil {
			return
		}
		v := u.Running()
		coded := contract.Errorf(contract.CodeFirmwareTrialFailed, "%v", reason)
		err = b.txn(func(c *txc) error {
			return c.event(contract.EventFirmwareStatus, firmwareStatus(v, contract.FirmwareFailed, coded))
		})
	}); cerr != nil {
		return cerr
	}
	return err
}
