#!/usr/bin/env python3
"""The nested rig's verdict: reads the console log that tools/rig recorded (and the disk images
the inner guests wrote), prints the report and exits 0 only if every check passed.

usage: tests/nested/judge.py --arch amd64|arm64 [--gic 2|3] [--job test|demo]
                             [--forms F,F...] [--payloads P,P...] [--disk FORM=IMAGE]...
                             [--snapshot] [--balloon] CONSOLE_LOG

--balloon: the log has the balloon scenario (the guest's balloon inflated and deflated through
the API, its /dev/hwrng read).

--snapshot: the log has the snapshot scenario (a guest snapshotted while it holds after its ready
marker, its VMM killed, the guest restored in a new VMM that does the checks); its disk is
--disk snapshot=IMAGE.

The log is self-contained: tools/rig writes RIG_HOST_START (the host's clock) before the outer
machine starts and RIG_HOST_END (the host's clock, QEMU's exit status) after it stops, so a
recorded log is judged the same way later (tests/nested/judge_test.py does, on recorded logs
with each check broken in turn). A log that stops early fails: every inner VM must reach its
RIG_INNER_DONE and the outer init its RIG_OUTER_DONE.
"""
import argparse
import re
import subprocess
import sys

PREFIX = re.compile(r"^\[rig +[0-9.]+s\] ?")
# Failures that any part of the run reports about itself; one of them anywhere fails a check.
OUTER_FAIL = re.compile(r"RIG_FAIL|RIG_INSMOD_FAILED")
INNER_FAIL = re.compile(r"EV_[A-Z]+_FAIL|EV_INSMOD_FAILED|Kernel panic|KVM internal error")


class Check:
    def __init__(self, cid, desc, ok):
        self.id, self.desc, self.ok = cid, desc, bool(ok)


def strip(text):
    return [PREFIX.sub("", l) for l in text.splitlines()]


def block(lines, form):
    """The lines of one inner VM run: from its RIG_INNER_START to its RIG_INNER_DONE (or to the
    end of the log, if it never finished)."""
    out, on = [], False
    for l in lines:
        if not on and l.startswith(f"RIG_INNER_START form={form} "):
            on = True
        if on:
            out.append(l)
            if l.startswith("RIG_INNER_DONE "):
                break
    return out


def grep(lines, pattern):
    rx = re.compile(pattern)
    return next((m for m in map(rx.search, lines) if m), None)


def field(lines, pattern, group=1):
    m = grep(lines, pattern)
    return m.group(group) if m else None


def host_file(image, path):
    """The file at PATH in the ext4 IMAGE, read on the host with debugfs ('' if missing)."""
    r = subprocess.run(["debugfs", "-R", f"cat {path}", image], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, errors="replace")
    return r.stdout if r.returncode == 0 else ""


def protocol(arch, form):
    if arch == "arm64":
        return "arm64 Image"
    if form.endswith("@linux") or form == "vmlinuz":
        return "Linux 64-bit boot protocol"
    return "PVH"


def poweroff(arch):
    """How the guest's power-off shows in the VMM's log: (what it is, the pattern)."""
    if arch == "arm64":
        return "PSCI SYSTEM_OFF", r"guest powered off \(exit code 0\)"
    return "ACPI power-off", r"guest powered off \(ACPI S5\)"


def judge(text, arch, gic=3, job="test", forms=(), payloads=(), disks=None, snapshot=False,
          balloon=False):
    """Returns (header, checks, times) for the console log TEXT."""
    lines = strip(text)
    disks = disks or {}
    checks, times = [], []

    def check(cid, desc, ok):
        checks.append(Check(cid, desc, ok))

    start = field(lines, r"^RIG_HOST_START epoch=(\d+)")
    end = grep(lines, r"^RIG_HOST_END epoch=(\d+) qemu_rc=(-?\d+)")
    check("host.qemu", "the outer machine (QEMU) ran to its end and exited 0",
          end is not None and end.group(2) == "0")
    if arch == "arm64":
        check("outer.kvm", f"outer machine has KVM (VHE), GICv{gic}",
              grep(lines, r"^RIG_OUTER_READY .*VHE mode initialized successfully"))
    else:
        check("outer.kvm", "outer machine has KVM with nested paging",
              grep(lines, r"^RIG_OUTER_READY .*Nested Paging enabled"))
    check("outer.clean", "the outer init reported no failure (RIG_FAIL, RIG_INSMOD_FAILED)",
          not grep(lines, OUTER_FAIL.pattern))
    check("outer.done", "the outer init ran every job to its end (RIG_OUTER_DONE)",
          grep(lines, r"^RIG_OUTER_DONE "))
    guest_kernel = "?"
    for form in forms:
        blk = block(lines, form)
        inner = lambda p, blk=blk: grep(blk, p)  # noqa: E731
        guest_kernel = field(blk, r"EDGEVISOR_GUEST_READY kernel=(\S+)") or guest_kernel
        check(f"{form}.ready", f"{form}: the guest reached its ready marker",
              inner(rf"^RIG_READY form={re.escape(form)} vmm=edgevisor "))
        check(f"{form}.clean", f"{form}: the guest and VMM reported no failure",
              blk and not grep(blk, INNER_FAIL.pattern))
        check(f"{form}.seccomp", f"{form}: the VMM's threads ran under their seccomp filters",
              inner(r"seccomp filters installed: main, 2 vCPU\(s\)"))
        check(f"{form}.exit", f"{form}: VMM exit status 0",
              inner(rf"^RIG_INNER_DONE form={re.escape(form)} vmm=edgevisor rc=0 "))
        off, off_rx = poweroff(arch)
        check(f"{form}.poweroff", f"{form}: {off}", inner(off_rx))
        if job == "test":
            judge_form(check, inner, blk, arch, gic, form, start, end, disks.get(form))
        bt = field(blk, r"Guest-boot-time = +(\d+) us")
        secs = field(blk, r"^RIG_INNER_DONE .* seconds=([0-9.]+)")
        times.append(f"{form}: VMM start -> guest /init {bt or '?'} us (boot timer); "
                     f"whole run {secs or '?'} s")
    for p in payloads:
        if p == "crash":
            judge_crash(check, lines)
            continue
        if p == "console_irq":
            judge_console_irq(check, lines, gic)
            continue
        blk = block(lines, f"payload-{p}")
        inner = lambda pat, blk=blk: grep(blk, pat)  # noqa: E731
        if p == "hello":
            check(f"payload-{p}.ran", f"payload {p}: console and command line",
                  inner(r"cmdline: hello from the rig"))
        elif p == "blk_bench":
            check(f"payload-{p}.ran", f"payload {p}: 32 requests in flight, every block read "
                  "back as written", inner(r"^verify: checked=[1-9][0-9]* mismatches=0$"))
        elif p == "net_bench":
            tx = grep(blk, r"^bench: tx done packets=(\d+) bytes=(\d+)")
            tap = field(lines, r"^RIG_NET_BENCH tap_rx_bytes=(\d+)")
            check(f"payload-{p}.tx", f"payload {p}: {tx[1] if tx else '?'} UDP datagrams sent, "
                  f"their {tx[2] if tx else '?'} bytes all on the host's tap ({tap or '?'})",
                  tx and int(tx[1]) > 0 and tap and int(tap) >= int(tx[2]))
        elif p == "net_hostile":
            check(f"payload-{p}.ran", f"payload {p}: every check passed",
                  inner(rf"(^| ){p}: [1-9][0-9]* passed, 0 failed"))
            got = field(lines, r"^RIG_NET_HOSTILE tap_rx_packets=(\d+)")
            check(f"payload-{p}.tap", f"payload {p}: the good datagram and no hostile frame on "
                  f"the host's tap ({got or '?'} frames, want 1)", got == "1")
        elif p == "console":
            check(f"payload-{p}.echo", f"payload {p}: two lines from the VMM's stdin echoed by "
                  "the guest, then its exit", inner(r"^echo: first line$") and
                  inner(r"^echo: second$") and inner(r"^console: exit$"))
        elif p == "net_responder":
            check(f"payload-{p}.ping", f"payload {p}: 20 pings from the outer machine, 0% loss",
                  inner(r"^RIG_NET ping 20 packets transmitted, 20 packets received, 0% packet "
                        r"loss"))
            check(f"payload-{p}.udp", f"payload {p}: 50 UDP datagrams of 1400 bytes echoed "
                  "byte-exact", inner(r"^RIG_NET UDP_CHECK sent=50 received=50 mismatches=0 "
                                      r"lost=0$"))
        else:
            check(f"payload-{p}.ran", f"payload {p}: every check passed",
                  inner(rf"(^| ){p}: [1-9][0-9]* passed, 0 failed"))
        check(f"payload-{p}.clean", f"payload {p}: no failure or exception reported",
              blk and not grep(blk, r"FAIL|FATAL"))
        check(f"payload-{p}.exit", f"payload {p}: exit through debug-exit, status 1 (returned 0)",
              inner(rf"^RIG_INNER_DONE form=payload-{p} vmm=edgevisor rc=1 "))
    if snapshot:
        judge_snapshot(check, lines, arch, disks.get("snapshot"), times)
    if balloon:
        judge_balloon(check, lines, times)
    outer_kernel = field(lines, r"^RIG_OUTER_READY .*kernel=(\S+)") or "?"
    outer_up = field(lines, r"^RIG_OUTER_READY uptime=([0-9.]+)")
    times.append(f"outer machine to /init with KVM: {outer_up or '?'} s (its uptime)")
    where = f"{arch}, GICv{gic}" if arch == "arm64" else arch
    header = f"nested rig {job} ({where}), outer kernel {outer_kernel}, guest kernel {guest_kernel}"
    return header, checks, times


def judge_snapshot(check, lines, arch, disk, times):
    """The snapshot scenario: "snapshot-src" boots and is snapshotted while it holds, "snapshot"
    is the guest restored in a new VMM, which must do all of its work."""
    src, dst = block(lines, "snapshot-src"), block(lines, "snapshot")
    check("snapshot.hold", "snapshot: the first VMM's guest held after its ready marker, and did "
          "nothing more before it was killed",
          grep(src, r"EDGEVISOR_GUEST_READY") and grep(src, r"EV_HOLD ") and
          not grep(src, r"EV_HELD|EV_DISK_|EV_PING_"))
    check("snapshot.created", "snapshot: PATCH /vm Paused and PUT /snapshot/create answered 204",
          grep(lines, r"^RIG_SNAPSHOT_CREATED pause=204 create=204 "))
    check("snapshot.diff", "snapshot: resumed and paused again, a Diff snapshot answered 204, "
          "and rebase-snap put its dirty pages onto the Full snapshot's memory file, which then "
          "equals a Full snapshot of the Diff's moment",
          grep(lines, r"^RIG_SNAPSHOT_DIFF resume=204 pause=204 create=204 ") and
          grep(src, r"snapshot \(Diff\): .* dirty pages\)") and
          grep(lines, r"^RIG_SNAPSHOT_REBASED rc=0 same_as_full=1$"))
    check("snapshot.loaded", "snapshot: PUT /snapshot/load answered 204 in a new VMM",
          grep(dst, r"^RIG_SNAPSHOT_LOADED http=204"))
    check("snapshot.restored", "snapshot: the new VMM restored both vCPUs from the files",
          grep(dst, r"restored VM: 2 vCPUs"))
    check("snapshot.clean", "snapshot: the guests and VMMs reported no failure",
          src and dst and not grep(src + dst, INNER_FAIL.pattern))
    check("snapshot.held", "snapshot: the restored guest went on from its hold",
          grep(dst, r"EV_HELD uptime="))
    check("snapshot.disk", "snapshot: the restored guest's ext4 write+sync+readback",
          grep(dst, r"EV_DISK_OK written by .* as snapshot$"))
    check("snapshot.disk_host", "snapshot: host sees the restored guest's file in the image",
          disk and host_file(disk, "/hello").rstrip("\n").endswith(" as snapshot"))
    check("snapshot.ping", "snapshot: the restored guest pings over virtio-net/TAP",
          grep(dst, r"EV_PING_OK 3 packets received"))
    if arch == "arm64":
        check("snapshot.alarm", "snapshot: the restored guest's PL031 alarm interrupts it",
              grep(dst, r"EV_ALARM_OK interrupts"))
    off, off_rx = poweroff(arch)
    check("snapshot.poweroff", f"snapshot: the restored guest's {off}", grep(dst, off_rx))
    check("snapshot.exit", "snapshot: the new VMM's exit status 0",
          grep(dst, r"^RIG_INNER_DONE form=snapshot vmm=edgevisor rc=0 "))
    created = field(lines, r"^RIG_SNAPSHOT_CREATED .* seconds=([0-9.]+)")
    whole = field(dst, r"^RIG_INNER_DONE .* seconds=([0-9.]+)")
    times.append(f"snapshot: boot to created {created or '?'} s; restored run {whole or '?'} s")


def judge_crash(check, lines):
    """The crash payload's PSCI modes (arm64): each is the VMM's exit, as Linux's reboot and
    power-off are."""
    for mode, call, rc, what in (("reset", "SYSTEM_RESET", 7, "the reboot exit code 7"),
                                 ("off", "SYSTEM_OFF", 0, "exit status 0")):
        blk = block(lines, f"payload-crash-{mode}")
        check(f"payload-crash-{mode}.exit", f"payload crash: PSCI {call} ends the VM with {what}",
              grep(blk, rf"crash: PSCI {call}$") and not grep(blk, r"still running|FATAL") and
              grep(blk, rf"^RIG_INNER_DONE form=payload-crash-{mode} vmm=edgevisor rc={rc} "))


def judge_console_irq(check, lines, gic):
    """The console payload with `irq` (arm64): the UART's SPI enabled at the GIC of the rig's
    version, the guest in WFI until each line arrives; an interrupt that never came would leave
    it waiting until the rig kills it."""
    blk = block(lines, "payload-console-irq")
    irqs = field(blk, r"^console: (\d+) interrupts$")
    check("payload-console-irq.gic", f"payload console irq: the UART's interrupt on GICv{gic}",
          grep(blk, rf"^console: UART interrupt: INTID \d+ on GICv{gic}$"))
    check("payload-console-irq.echo", f"payload console irq: two lines echoed, by "
          f"{irqs or 'no'} interrupts, then its exit",
          grep(blk, r"^echo: first line$") and grep(blk, r"^echo: second$") and
          irqs is not None and int(irqs) >= 2 and grep(blk, r"^console: exit$"))
    check("payload-console-irq.exit", "payload console irq: exit through debug-exit, status 1",
          grep(blk, r"^RIG_INNER_DONE form=payload-console-irq vmm=edgevisor rc=1 ") and
          not grep(blk, r"FAIL|FATAL"))


# The balloon the scenario inflates (MiB), and how much of it the VMM's resident memory must lose:
# the guest wrote and freed that much first, but its balloon driver may also take pages the host
# never held.
BALLOON_MIB = 64
BALLOON_MIN_DROP_MIB = 32


def judge_balloon(check, lines, times):
    """The balloon scenario: the Linux guest's virtio-balloon, virtio-rng and vsock drivers."""
    blk = block(lines, "balloon")
    inner = lambda p: grep(blk, p)  # noqa: E731
    check("balloon.hwrng", "balloon: the guest's /dev/hwrng is the virtio entropy device",
          inner(r"EV_HWRNG_OK current=virtio_rng"))
    m = inner(r"^RIG_BALLOON patch=(\d+) rss_before_mib=(\d+) rss_after_mib=(\d+) stats=(\d+) (.*)$")
    check("balloon.patch", "balloon: PATCH /balloon to 64 MiB answered 204",
          m and m.group(1) == "204")
    check("balloon.inflated", f"balloon: the guest's MemTotal fell by {BALLOON_MIB} MiB",
          inner(r"EV_BALLOON_INFLATED memtotal_mib="))
    drop = int(m.group(2)) - int(m.group(3)) if m else None
    check("balloon.rss", f"balloon: the VMM's resident memory fell by at least "
          f"{BALLOON_MIN_DROP_MIB} MiB", drop is not None and drop >= BALLOON_MIN_DROP_MIB)
    stats = m and m.group(4) == "200" and m.group(5)
    check("balloon.stats", "balloon: GET /balloon/statistics has the guest's figures and the "
          f"balloon at {BALLOON_MIB} MiB",
          stats and f'"actual_mib":{BALLOON_MIB},' in stats and '"total_memory":' in stats and
          '"free_memory":' in stats)
    check("balloon.deflated", "balloon: deflated to 0, the guest got its memory back",
          inner(r"^RIG_BALLOON_DEFLATE patch=204") and inner(r"EV_BALLOON_DEFLATED memtotal_mib="))
    check("vsock.guest_to_host", "vsock: the guest's 1 MiB to host port 6000 came back byte-exact",
          inner(r"EV_VSOCK_CLIENT_OK VSOCK_CHECK guest->host sent=1048576 received=1048576 "
                r"mismatches=0"))
    check("vsock.host_to_guest", "vsock: a host process's 1 MiB to guest port 5000 came back "
          "byte-exact", inner(r"^RIG_VSOCK VSOCK_CHECK host->guest sent=1048576 received=1048576 "
                              r"mismatches=0"))
    check("vsock.served", "vsock: the guest's listener served the host's connection",
          inner(r"EV_VSOCK_SERVED"))
    mmds = inner(r"EV_MMDS_OK token=(\d+)chars hostname=(\S*) zone=(\S*) keys=(\S*) "
                 r"json=(\S*) notoken=(\d+) missing=(\d+)")
    check("mmds.token", "mmds: the guest's curl got a V2 session token (PUT /latest/api/token)",
          mmds and mmds.group(1) == "43")
    check("mmds.read", "mmds: with it, the guest read a key from --metadata's store",
          mmds and mmds.group(2) == "rig-guest")
    check("mmds.patch", "mmds: a PATCH /mmds while the guest ran reached the guest",
          inner(r"^RIG_MMDS patch=204") and mmds and mmds.group(3) == "edge-1")
    check("mmds.formats", "mmds: keys listed as IMDS text, a value as JSON",
          mmds and mmds.group(4) == "hostname,instance-id,zone" and mmds.group(5) == '"i-0rig"')
    check("mmds.errors", "mmds: 401 without the token, 404 for a missing key",
          mmds and mmds.group(6) == "401" and mmds.group(7) == "404")
    check("balloon.clean", "balloon: the guest and VMM reported no failure",
          blk and not grep(blk, INNER_FAIL.pattern))
    check("balloon.exit", "balloon: the VMM's exit status 0 after the guest's power-off",
          inner(r"^RIG_INNER_DONE form=balloon vmm=edgevisor rc=0 "))
    if m:
        times.append(f"balloon: VMM RSS {m.group(2)} MiB, {m.group(3)} MiB with the balloon at "
                     f"{BALLOON_MIB} MiB")


def judge_form(check, inner, blk, arch, gic, form, start, end, disk):
    """The checks of the test job for one kernel form."""
    check(f"{form}.entry", f"{form}: entered through {protocol(arch, form)}",
          inner(rf"kernel /guest/{re.escape(form.split('@')[0])}: {protocol(arch, form)} entry at"))
    check(f"{form}.cpus", f"{form}: 2 vCPUs online", inner(r"EDGEVISOR_GUEST_READY .*cpus=2 "))
    epoch = field(blk, r"EDGEVISOR_GUEST_READY .*epoch=(\d+)")
    check(f"{form}.clock", f"{form}: the guest's clock is the host's (within a minute)",
          epoch and start and end and
          int(start) - 60 <= int(epoch) <= int(end.group(1)) + 60)
    if arch == "arm64":
        check(f"{form}.clocksource", f"{form}: the architected timer is the clocksource",
              inner(r"EDGEVISOR_GUEST_READY .*clocksource=arch_sys_counter "))
    else:
        check(f"{form}.clocksource", f"{form}: kvmclock is the clocksource",
              inner(r"EDGEVISOR_GUEST_READY .*clocksource=kvm-clock "))
    check(f"{form}.disk", f"{form}: ext4 write+sync+readback",
          inner(rf"EV_DISK_OK written by .* as {re.escape(form)}$"))
    check(f"{form}.disk_host", f"{form}: host sees the file in the image",
          disk and host_file(disk, "/hello").rstrip("\n").endswith(f" as {form}"))
    check(f"{form}.ping", f"{form}: ping over virtio-net/TAP", inner(r"EV_PING_OK 3 packets received"))
    if arch == "arm64":
        check(f"{form}.gic", f"{form}: the guest runs on a GICv{gic}",
              inner(rf"EDGEVISOR_GUEST_READY .*gic=v{gic}( |$)"))
        if str(gic) == "3":
            check(f"{form}.its", f"{form}: the guest's GICv3 has an ITS",
                  inner(r"EDGEVISOR_GUEST_READY .*gic=v3 its=1 "))
        else:
            check(f"{form}.its", f"{form}: no ITS on a GICv2",
                  inner(r"EDGEVISOR_GUEST_READY ") and not inner(r"its=1"))
        check(f"{form}.rtc", f"{form}: the PL031 is the RTC",
              inner(r"EDGEVISOR_GUEST_READY .*rtc=rtc-pl031 "))
        check(f"{form}.cpufeatures", f"{form}: the guest has a PMUv3, SVE and pointer "
              "authentication (the outer CPU, -cpu max, has them)",
              inner(r"EDGEVISOR_GUEST_READY .* pmu=1 sve=1 pac=1 "))
        vl = field(blk, r"SVE: vector lengths up to (\d+) bytes")
        check(f"{form}.svevl", f"{form}: the guest's longest SVE vector ({vl or '?'} bytes) is "
              "the one edgevisor configured", vl and inner(rf"EDGEVISOR_GUEST_READY .* svevl={vl} "))
        check(f"{form}.pmucount", f"{form}: the guest's PMU counts cycles (perf_event_open)",
              inner(r"EV_PMU_OK cycles=[1-9]"))
        check(f"{form}.alarm", f"{form}: the PL031 alarm interrupts the guest",
              inner(r"EV_ALARM_OK interrupts"))


def main():
    ap = argparse.ArgumentParser(prog="judge.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", required=True, choices=["amd64", "arm64"])
    ap.add_argument("--gic", default="3", choices=["2", "3"])
    ap.add_argument("--job", default="test", choices=["test", "demo"])
    ap.add_argument("--forms", default="")
    ap.add_argument("--payloads", default="")
    ap.add_argument("--disk", action="append", default=[], metavar="FORM=IMAGE")
    ap.add_argument("--snapshot", action="store_true")
    ap.add_argument("--balloon", action="store_true")
    ap.add_argument("console")
    a = ap.parse_args()
    forms = [f for f in a.forms.split(",") if f]
    if not forms:
        ap.error("--forms names no kernel form")
    disks = dict(d.split("=", 1) for d in a.disk)
    with open(a.console, errors="replace") as f:
        text = f.read()
    header, checks, times = judge(text, a.arch, a.gic, a.job, forms,
                                  [p for p in a.payloads.replace(" ", ",").split(",") if p], disks,
                                  a.snapshot, a.balloon)
    print(header)
    for c in checks:
        print(f"  {'ok  ' if c.ok else 'FAIL'}  {c.desc}")
    for t in times:
        print(f"  time  {t}")
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
