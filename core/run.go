package core

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

// A CLI run records its command_executed event as what it knows of itself
// (runRecord), written to the runs log at the start and again, whole, at
// the finish (store.Queue.BeginRun, store.RunStart.Finish). The event is
// built, scrubbed and encoded from it when the log is reaped (buildRun):
// in the detached sender, or in a telemetry command, which reap before
// they send or show. So the command's process neither builds nor encodes
// the event, nor touches the journal: a recording run costs its tool about
// 2% less (docs/benchmarks.md, "Compact run records").

// runRecord is a command run as the runs log keeps it: the tool's own
// names (the command path, flag names) as they are, the collected flag
// values scrubbed. The event built from it is scrubbed whole.
type runRecord struct {
	id        uuid
	at        time.Time // the event's time: the finish, or the start of a run that has not finished
	session   string
	version   string // the service version that ran
	sdk       string // the SDK version that ran
	goVersion string
	ciName    string
	ci        bool
	finished  bool
	cmd       Command // Err nil; ErrorKind and ExitCode as the run ended
}

// runRecordMagic starts an encoded runRecord, and names its layout.
const runRecordMagic = "TKR1"

// errRunRecord reports a run record that cannot be read.
var errRunRecord = errors.New("telemetry: malformed run record")

// newRunRecord returns what c knows of the run of cmd at at; finished
// says whether cmd holds its outcome.
func (c *Client) newRunRecord(id uuid, at time.Time, session string, cmd Command, finished bool) runRecord {
	r := runRecord{id: id, at: at, session: session, version: c.cfg.ServiceVersion, sdk: c.sdk.Version,
		goVersion: c.env.GoVersion, ciName: c.env.CIName, ci: c.env.CI, finished: finished}
	r.cmd = Command{Path: cmd.Path, Flags: cmd.Flags, Args: cmd.Args}
	if len(cmd.FlagValues) > 0 {
		// What the person typed is scrubbed before it is written
		// anywhere, the runs log too; the event is scrubbed again when it
		// is built, which changes nothing more (Scrub is idempotent).
		sc := c.scrubber()
		r.cmd.FlagValues = make(map[string]string, len(cmd.FlagValues))
		for k, v := range cmd.FlagValues {
			r.cmd.FlagValues[k] = sc.Scrub(v)
		}
	}
	if finished {
		r.cmd.ErrorKind, r.cmd.ExitCode = outcome(cmd)
		r.cmd.Duration = cmd.Duration
	}
	return r
}

// runData returns the encoded record of the run id of cmd, now.
func (c *Client) runData(id uuid, cmd Command, finished bool) []byte {
	now := c.cfg.Host.Now()
	return appendRunRecord(make([]byte, 0, 256), c.newRunRecord(id, now, *c.touchSession(now), cmd, finished))
}

// appendRunRecord appends r's encoding to b.
func appendRunRecord(b []byte, r runRecord) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, runRecordMagic...)
	b = append(b, r.id[:]...)
	b = binary.AppendVarint(b, r.at.UnixMilli())
	str(r.session)
	str(r.version)
	str(r.sdk)
	str(r.goVersion)
	str(r.ciName)
	var bits byte
	if r.ci {
		bits |= 1
	}
	if r.finished {
		bits |= 2
	}
	b = append(b, bits)
	str(r.cmd.Path)
	b = binary.AppendUvarint(b, uint64(len(r.cmd.Flags)))
	for _, f := range r.cmd.Flags {
		str(f)
	}
	names := make([]string, 0, len(r.cmd.FlagValues))
	for k := range r.cmd.FlagValues {
		names = append(names, k)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		str(k)
		str(r.cmd.FlagValues[k])
	}
	b = binary.AppendVarint(b, int64(r.cmd.Args))
	if r.finished {
		str(r.cmd.ErrorKind)
		b = binary.AppendVarint(b, int64(r.cmd.ExitCode))
		b = binary.AppendVarint(b, r.cmd.Duration.Milliseconds())
	}
	return b
}

// maxRunItems bounds the flags and flag values a run record may name.
const maxRunItems = 4096

// decodeRunRecord reads an encoded runRecord.
func decodeRunRecord(b []byte) (runRecord, error) {
	var r runRecord
	if len(b) < len(runRecordMagic)+len(r.id) || string(b[:len(runRecordMagic)]) != runRecordMagic {
		return r, errRunRecord
	}
	b = b[len(runRecordMagic):]
	copy(r.id[:], b)
	b = b[len(r.id):]
	bad := false
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	uvarint := func(max uint64) int {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > max {
			bad = true
			return 0
		}
		b = b[n:]
		return int(v)
	}
	str := func() string {
		n := uvarint(1 << 20)
		if bad || n > len(b) {
			bad = true
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	r.at = time.UnixMilli(varint())
	r.session, r.version, r.sdk, r.goVersion, r.ciName = str(), str(), str(), str(), str()
	if bad || len(b) == 0 {
		return r, errRunRecord
	}
	bits := b[0]
	b = b[1:]
	r.ci, r.finished = bits&1 != 0, bits&2 != 0
	r.cmd.Path = str()
	if n := uvarint(maxRunItems); n > 0 {
		r.cmd.Flags = make([]string, n)
		for i := range r.cmd.Flags {
			r.cmd.Flags[i] = str()
		}
	}
	if n := uvarint(maxRunItems); n > 0 {
		r.cmd.FlagValues = make(map[string]string, n)
		for range n {
			k := str()
			r.cmd.FlagValues[k] = str()
		}
	}
	r.cmd.Args = int(varint())
	if r.finished {
		r.cmd.ErrorKind = str()
		r.cmd.ExitCode = int(varint())
		r.cmd.Duration = time.Duration(varint()) * time.Millisecond
	}
	if bad || len(b) != 0 {
		return runRecord{}, errRunRecord
	}
	return r, nil
}

// buildRun turns a run record from the runs log into the event to queue,
// as TrackCommand would have recorded it in the run: a finished run with
// its outcome, one that did not finish with error_kind "unknown" and
// neither success, duration nor exit code. The event is scrubbed here.
func (c *Client) buildRun(data []byte) (_ []byte, err error) {
	defer c.recoverPanicErr("build run", &err)
	r, err := decodeRunRecord(data)
	if err != nil {
		return nil, err
	}
	var props Props
	if r.finished {
		props = commandProps(r.cmd)
	} else {
		props = startedProps(r.cmd)
	}
	ev := c.event(&pending{id: r.id, typ: wire.EventCommandExecuted, ts: r.at, session: &r.session, props: props})
	ev.ServiceVersion = r.version
	ev.SDK.Version = r.sdk
	ev.Env.GoVersion = r.goVersion
	ev.Env.CI, ev.Env.CIName = r.ci, r.ciName
	return wire.AppendEvent(make([]byte, 0, 512), ev)
}
