#!/usr/bin/env python3
"""The nested rig's judge (tests/nested/judge.py) on console logs recorded from real rig runs
(tests/nested/recorded/): each passes as recorded, and fails with any one of its checks broken.
Every check the judge makes on a log must have a way to break it here, or this test fails: a
check without a failing case could be one that cannot fail.

The disk images the judge reads are made here (mke2fs -d) with the file each recorded guest
wrote; the recorded logs are of tools/rig test (amd64; arm64 with GICv3 and with GICv2).

usage: tests/nested/judge_test.py   (meson: rig_judge)"""
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("judge", os.path.join(HERE, "judge.py"))
judge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(judge)

# tools/rig's arm64 payloads, in the order it runs them.
ARM64_PAYLOADS = ["hello", "selftest", "blk_integrity", "blk_hostile", "blk_bench", "net_responder",
                  "net_bench", "net_hostile", "console", "crash", "console_irq"]
RECORDED = {
    # name: (arch, gic, forms, payloads, with the snapshot scenario, with the balloon scenario)
    "rig-amd64.log": ("amd64", "3", ["vmlinux", "vmlinuz", "vmlinux@linux"], [], True, True),
    "rig-arm64-gicv3.log": ("arm64", "3", ["vmlinuz"], ARM64_PAYLOADS, True, True),
    "rig-arm64-gicv2.log": ("arm64", "2", ["vmlinuz"], ARM64_PAYLOADS, True, True),
}


def edit(text, scope, fn):
    """Applies fn(content) -> list of contents to every line of TEXT (within the inner run SCOPE,
    a form, if given); a line keeps its '[rig ...s] ' prefix."""
    out, on = [], scope is None
    for raw in text.split("\n"):
        m = judge.PREFIX.match(raw)
        pre, body = (raw[:m.end()], raw[m.end():]) if m else ("", raw)
        if scope is not None and body.startswith(f"RIG_INNER_START form={scope} "):
            on = True
        out += [pre + b for b in fn(body)] if on else [raw]
        if scope is not None and on and body.startswith("RIG_INNER_DONE "):
            on = False
    return "\n".join(out)


def sub(pattern, repl):
    return lambda body: [re.sub(pattern, repl, body)]


def drop(pattern):
    return lambda body: [] if re.search(pattern, body) else [body]


def after(pattern, extra):
    return lambda body: [body, extra] if re.search(pattern, body) else [body]


# How to break each check: (scope, line edit). Scope "form" is the check's own inner run.
BREAK = {
    "host.qemu": (None, sub(r"qemu_rc=0$", "qemu_rc=124")),
    "outer.kvm": (None, sub(r"Nested Paging enabled|VHE mode initialized successfully", "")),
    "outer.clean": (None, after(r"^RIG_OUTER_READY ", "RIG_INSMOD_FAILED tun")),
    "outer.done": (None, drop(r"^RIG_OUTER_DONE ")),
    "ready": ("form", drop(r"^RIG_READY ")),
    "clean": ("form", after(r"EDGEVISOR_GUEST_READY", "EV_INSMOD_FAILED virtio_net")),
    "exit": ("form", sub(r"^(RIG_INNER_DONE .* rc=)[0-9]+ ", r"\g<1>3 ")),
    "seccomp": ("form", drop(r"seccomp filters installed")),
    "poweroff": ("form", drop(r"guest powered off")),
    "entry": ("form", drop(r"entry at")),
    "cpus": ("form", sub(r"cpus=2 ", "cpus=1 ")),
    "clock": ("form", lambda b: [re.sub(r"epoch=(\d+)", lambda m: f"epoch={int(m[1]) - 3600}", b)]),
    "clocksource": ("form", sub(r"clocksource=\S+", "clocksource=tsc")),
    "disk": ("form", drop(r"EV_DISK_OK")),
    "ping": ("form", sub(r"EV_PING_OK 3 packets", "EV_PING_OK 0 packets")),
    "gic": ("form", sub(r"gic=v([23])", lambda m: f"gic=v{5 - int(m[1])}")),
    "its": ("form", lambda b: [b.replace(" its=1", "") if " its=1" in b else
                               b.replace("gic=v2", "gic=v2 its=1")]),
    "rtc": ("form", sub(r"rtc=rtc-pl031", "rtc=rtc-efi")),
    "cpufeatures": ("form", sub(r" sve=1 ", " sve=0 ")),
    "svevl": ("form", lambda b: [re.sub(r" svevl=(\d+) ", lambda m: f" svevl={2 * int(m[1])} ",
                                        b)]),
    "pmucount": ("form", sub(r"EV_PMU_OK cycles=\d+", "EV_PMU_OK cycles=0")),
    "alarm": ("form", drop(r"EV_ALARM_OK")),
    "ran": ("form", lambda b: [] if "cmdline: hello from the rig" in b else
            [re.sub(r"(\d+) passed, 0 failed", r"\1 passed, 1 failed", b)]),
    "payload-clean": ("form", after(r"^RIG_INNER_START", "blk: check 7: FAIL status 1")),
    "payload-exit": ("form", sub(r"^(RIG_INNER_DONE .* rc=)1 ", r"\g<1>0 ")),
    # The arm64 payloads' own checks (by full id).
    "payload-blk_bench.ran": ("payload-blk_bench", sub(r"mismatches=0$", "mismatches=2")),
    "payload-net_responder.ping": ("payload-net_responder",
                                   sub(r"20 packets received, 0% packet loss",
                                       "19 packets received, 5% packet loss")),
    "payload-net_responder.udp": ("payload-net_responder",
                                  sub(r"mismatches=0 lost=0$", "mismatches=1 lost=0")),
    "payload-net_bench.tx": (None, sub(r"^RIG_NET_BENCH tap_rx_bytes=\d+", "RIG_NET_BENCH tap_rx_bytes=0")),
    "payload-console.echo": ("payload-console", sub(r"^echo: second$", "echo: secnd")),
    "payload-net_hostile.tap": (None, sub(r"^RIG_NET_HOSTILE tap_rx_packets=\d+",
                                          "RIG_NET_HOSTILE tap_rx_packets=2")),
    "payload-console-irq.gic": ("payload-console-irq", sub(r" on GICv\d$", " on GICv1")),
    "payload-console-irq.echo": ("payload-console-irq", sub(r"^console: \d+ interrupts$",
                                                            "console: 0 interrupts")),
    "payload-crash-reset.exit": ("payload-crash-reset", sub(r"^(RIG_INNER_DONE .* rc=)7 ",
                                                            r"\g<1>0 ")),
    "payload-crash-off.exit": ("payload-crash-off", after(r"crash: PSCI SYSTEM_OFF",
                                                          "crash: still running after the crash "
                                                          "request")),
    # The snapshot scenario's own checks (by full id: their scopes are its two runs).
    "snapshot.hold": ("snapshot-src", after(r"EV_HOLD ", "EV_DISK_OK written too early")),
    "snapshot.created": (None, sub(r"create=204 ", "create=400 ")),
    "snapshot.diff": (None, sub(r"same_as_full=1$", "same_as_full=0")),
    "snapshot.loaded": ("snapshot", sub(r"http=204", "http=400")),
    "snapshot.restored": ("snapshot", drop(r"restored VM:")),
    "snapshot.clean": ("snapshot-src", after(r"EV_HOLD ", "EV_INSMOD_FAILED virtio_blk")),
    "snapshot.held": ("snapshot", drop(r"EV_HELD ")),
    # The balloon scenario's (its run is "balloon").
    "balloon.hwrng": ("balloon", sub(r"current=virtio_rng", "current=tpm-rng")),
    "balloon.patch": ("balloon", sub(r"^RIG_BALLOON patch=204", "RIG_BALLOON patch=400")),
    "balloon.inflated": ("balloon", drop(r"EV_BALLOON_INFLATED")),
    "balloon.rss": ("balloon", sub(r"rss_before_mib=(\d+) rss_after_mib=\d+",
                                   r"rss_before_mib=\1 rss_after_mib=\1")),
    "balloon.stats": ("balloon", sub(r'"total_memory":\d+,?', "")),
    "balloon.deflated": ("balloon", drop(r"EV_BALLOON_DEFLATED")),
    "balloon.clean": ("balloon", after(r"EV_BALLOON_WAIT", "EV_BALLOON_FAIL inflate")),
    "balloon.exit": ("balloon", sub(r"^(RIG_INNER_DONE .* rc=)0 ", r"\g<1>1 ")),
    "vsock.guest_to_host": ("balloon", sub(r"guest->host sent=1048576 received=1048576 mismatches=0",
                                           "guest->host sent=1048576 received=1048576 mismatches=3")),
    "vsock.host_to_guest": ("balloon", sub(r"host->guest sent=1048576 received=1048576",
                                           "host->guest sent=1048576 received=524288")),
    "vsock.served": ("balloon", drop(r"EV_VSOCK_SERVED")),
    "mmds.token": ("balloon", sub(r"token=43chars", "token=0chars")),
    "mmds.read": ("balloon", sub(r"hostname=rig-guest", "hostname=")),
    "mmds.patch": ("balloon", sub(r"^RIG_MMDS patch=204", "RIG_MMDS patch=400")),
    "mmds.formats": ("balloon", sub(r'json="i-0rig"', "json=i-0rig")),
    "mmds.errors": ("balloon", sub(r"notoken=401", "notoken=200")),
}


def breaker(cid):
    form, _, what = cid.rpartition(".")
    if form.startswith("payload-") and what in ("clean", "exit"):
        what = "payload-" + what
    if cid in BREAK:
        return BREAK[cid]
    scope, fn = BREAK[what]
    return (form if scope == "form" else None), fn


class JudgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.logs = {}
        for name in RECORDED:
            with open(os.path.join(HERE, "recorded", name)) as f:
                cls.logs[name] = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def disk(self, name, form, content):
        """An ext4 image with /hello = CONTENT, as the guest left its disk."""
        d = tempfile.mkdtemp(dir=self.tmp.name)
        os.mkdir(os.path.join(d, "root"))
        with open(os.path.join(d, "root", "hello"), "w") as f:
            f.write(content + "\n")
        img = os.path.join(d, "disk.img")
        subprocess.run(["mke2fs", "-q", "-t", "ext4", "-F", "-d", os.path.join(d, "root"), img,
                        "2M"], check=True, stdout=subprocess.DEVNULL)
        return img

    def disks(self, name, text, form_content=None):
        """The disk per form with the file that form's guest reported writing (EV_DISK_OK)."""
        forms = RECORDED[name][2] + (["snapshot"] if RECORDED[name][4] else [])
        out = {}
        for form in forms:
            m = re.search(rf"EV_DISK_OK (written by .* as {re.escape(form)})$",
                          "\n".join(judge.block(judge.strip(text), form)), re.M)
            content = (form_content or {}).get(form, m.group(1) if m else "")
            out[form] = self.disk(name, form, content)
        return out

    def run_judge(self, name, text, disks):
        arch, gic, forms, payloads, snapshot, balloon = RECORDED[name]
        _, checks, _ = judge.judge(text, arch, gic, "test", forms, payloads, disks, snapshot,
                                   balloon)
        return checks

    def test_recorded_logs_pass(self):
        for name, text in self.logs.items():
            with self.subTest(log=name):
                checks = self.run_judge(name, text, self.disks(name, text))
                self.assertGreater(len(checks), 10)
                self.assertEqual([c.desc for c in checks if not c.ok], [])

    def test_each_broken_check_fails(self):
        for name, text in self.logs.items():
            disks = self.disks(name, text)
            for c in self.run_judge(name, text, disks):
                with self.subTest(log=name, check=c.id):
                    if c.id.endswith(".disk_host"):
                        # The host reads the image: the guest's file is not there.
                        form = c.id.rsplit(".", 1)[0]
                        broken_disks = dict(disks, **self.disks(name, text, {form: "stale"}))
                        broken = self.run_judge(name, text, broken_disks)
                    else:
                        scope, fn = breaker(c.id)
                        mutated = edit(text, scope, fn)
                        self.assertNotEqual(mutated, text, "the edit changed nothing")
                        broken = self.run_judge(name, mutated, disks)
                    failed = [b.id for b in broken if not b.ok]
                    self.assertIn(c.id, failed)

    def test_truncated_log_fails(self):
        for name, text in self.logs.items():
            with self.subTest(log=name):
                lines = text.split("\n")
                # Cut just after the first guest's ready marker: the rest never happened.
                cut = next(i for i, l in enumerate(lines) if "EDGEVISOR_GUEST_READY" in l)
                checks = self.run_judge(name, "\n".join(lines[:cut + 1]), self.disks(name, text))
                self.assertIn("host.qemu", [c.id for c in checks if not c.ok])
                self.assertIn("outer.done", [c.id for c in checks if not c.ok])

    def test_missing_disk_fails(self):
        name = "rig-amd64.log"
        checks = self.run_judge(name, self.logs[name], {})
        self.assertIn("vmlinux.disk_host", [c.id for c in checks if not c.ok])

    def test_command_line_exit_status(self):
        """The rig uses the exit status: 0 for the recorded log, 1 for a broken one."""
        name = "rig-amd64.log"
        text = self.logs[name]
        disks = self.disks(name, text)
        args = [sys.executable, os.path.join(HERE, "judge.py"), "--arch", "amd64", "--snapshot",
                "--balloon",
                "--forms", ",".join(RECORDED[name][2])] + [f"--disk={f}={d}"
                                                           for f, d in disks.items()]
        for log_text, want in ((text, 0), (edit(text, "vmlinuz", BREAK["cpus"][1]), 1)):
            path = os.path.join(self.tmp.name, f"console-{want}.log")
            with open(path, "w") as f:
                f.write(log_text)
            r = subprocess.run(args + [path], stdout=subprocess.PIPE, text=True)
            self.assertEqual(r.returncode, want, r.stdout)
            self.assertRegex(r.stdout.splitlines()[-1], rf"^\d+ passed, {want} failed$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
