#!/usr/bin/env python3
"""Contract test: edgevisor's REST API against Firecracker's own OpenAPI (Swagger 2.0) file.

The spec is read from the shared reference directory (../shared/reference/firecracker-api.yaml
next to the source tree, or $FC_API_YAML); it is not part of this project. Requests and
responses are validated with python3-jsonschema (Debian) against the definitions in the spec:

  * every request body we send to an implemented endpoint validates against the endpoint's body
    schema (so the examples here are real Firecracker requests);
  * every response carries a status code the spec lists for that operation (or "default"), and
    its body validates against the schema given for that code (Error for 400s);
  * every path and method in the spec is exercised: implemented ones must succeed, the rest
    must answer 400 with a fault_message saying they are not supported (never a silent 204).

usage: fc_api_contract.py EDGEVISOR FIRMWARE_DIR SOURCE_ROOT
"""
import http.client
import json
import os
import signal
import stat
import socket
import subprocess
import sys
import tempfile
import time

import jsonschema
import yaml

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def find_spec(source_root):
    candidates = [os.environ.get("FC_API_YAML", ""),
                  os.path.join(source_root, "..", "shared", "reference", "firecracker-api.yaml"),
                  os.path.join(source_root, "shared", "reference", "firecracker-api.yaml"),
                  "/work/shared/reference/firecracker-api.yaml"]
    for c in candidates:
        if c and os.path.isfile(c):
            return os.path.realpath(c)
    return None


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


class Contract:
    def __init__(self, spec, sock):
        self.spec = spec
        self.sock = sock
        self.defs = spec["definitions"]
        self.exercised = set()

    def schema(self, s):
        # Resolve "#/definitions/X" inside the whole spec; Swagger 2.0 schemas are draft-4.
        return jsonschema.Draft4Validator(dict(s, definitions=self.defs))

    def operation(self, method, path_template):
        return self.spec["paths"][path_template][method.lower()]

    def call(self, method, path_template, path, body=None, expect=None, valid_request=True):
        """Sends one request; validates request and response against the spec. Requests that
        are wrong on purpose (valid_request=False) only have their response checked."""
        op = self.operation(method, path_template)
        self.exercised.add((path_template, method.lower()))
        what = f"{method} {path}"
        if body is not None and valid_request:
            params = [p for p in op.get("parameters", []) if p.get("in") == "body"]
            check(len(params) == 1, f"{what}: the spec has a body parameter")
            if params:
                errs = list(self.schema(params[0]["schema"]).iter_errors(body))
                check(not errs, f"{what}: request body matches the spec: {[e.message for e in errs]}")
        conn = UnixHTTPConnection(self.sock)
        data = json.dumps(body) if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read().decode()
        conn.close()
        status = resp.status
        responses = op["responses"]
        documented = str(status) in {str(k) for k in responses} or "default" in responses
        check(documented, f"{what}: status {status} is documented for this operation")
        spec_resp = responses.get(status, responses.get(str(status), responses.get("default")))
        if status == 204:
            check(raw == "", f"{what}: 204 has no body (got {raw!r})")
        elif spec_resp and "schema" in spec_resp:
            try:
                doc = json.loads(raw)
            except ValueError:
                check(False, f"{what}: response is JSON: {raw!r}")
                return status, None
            errs = list(self.schema(spec_resp["schema"]).iter_errors(doc))
            check(not errs, f"{what}: {status} body matches the spec: {[e.message for e in errs]} in {raw}")
            if status >= 400:
                check(isinstance(doc.get("fault_message"), str) and doc["fault_message"],
                      f"{what}: error has a fault_message")
        if expect is not None:
            check(status == expect, f"{what}: status {status}, wanted {expect}: {raw}")
        print(f"  {what} -> {status} {raw[:100]}")
        return status, (json.loads(raw) if raw else None)


def start_vmm(binary, sock, vm_id):
    """An edgevisor serving the API on SOCK, once the socket exists (5 s at most)."""
    vmm = subprocess.Popen([binary, "--api-sock", sock, "--id", vm_id],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    for _ in range(500):
        if os.path.exists(sock):
            break
        time.sleep(0.01)
    return vmm


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    binary, firmware, source_root = sys.argv[1:]
    spec_path = find_spec(source_root)
    if spec_path is None:
        print("SKIP: firecracker-api.yaml not found (set FC_API_YAML, or put the shared reference "
              "directory next to the source tree)")
        return 77
    print("spec:", spec_path)
    with open(spec_path) as f:
        spec = yaml.safe_load(f)

    tmp = tempfile.mkdtemp(prefix="ev-contract-")
    sock = os.path.join(tmp, "api.sock")
    disk = os.path.join(tmp, "rootfs.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    metrics = os.path.join(tmp, "metrics.json")
    log = os.path.join(tmp, "vmm.log")
    vmm = start_vmm(binary, sock, "contract")
    c = Contract(spec, sock)

    # Pre-boot: Firecracker's getting-started requests plus the rest of the configuration API.
    c.call("GET", "/", "/", expect=200)
    c.call("GET", "/version", "/version", expect=200)
    c.call("GET", "/machine-config", "/machine-config", expect=200)
    c.call("PUT", "/logger", "/logger",
           {"log_path": log, "level": "Info", "show_level": True, "show_log_origin": False},
           expect=204)
    c.call("PUT", "/metrics", "/metrics", {"metrics_path": metrics}, expect=204)
    c.call("PUT", "/boot-source", "/boot-source",
           {"kernel_image_path": os.path.join(firmware, "console.elf"),
            "boot_args": "console=ttyS0 reboot=k panic=1 pci=off irq"}, expect=204)
    c.call("PUT", "/drives/{drive_id}", "/drives/rootfs",
           {"drive_id": "rootfs", "path_on_host": disk, "is_root_device": True,
            "is_read_only": False, "cache_type": "Unsafe", "io_engine": "Async"}, expect=204)
    c.call("PUT", "/machine-config", "/machine-config",
           {"vcpu_count": 2, "mem_size_mib": 64, "smt": False, "track_dirty_pages": False},
           expect=204)
    # The spec reuses MachineConfiguration (both fields required) for PATCH bodies.
    c.call("PATCH", "/machine-config", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 48},
           expect=204)
    _, mc = c.call("GET", "/machine-config", "/machine-config", expect=200)
    check(mc and mc["vcpu_count"] == 2 and mc["mem_size_mib"] == 48, "PATCH set mem_size_mib")
    # A TAP that does not exist yet: as root, opening it creates it (and InstanceStart again).
    tap = f"evct{os.getpid() % 10000}"
    c.call("PUT", "/network-interfaces/{iface_id}", "/network-interfaces/eth0",
           {"iface_id": "eth0", "guest_mac": "AA:FC:00:00:00:01", "host_dev_name": tap},
           expect=204)
    c.call("PUT", "/entropy", "/entropy",
           {"rate_limiter": {"bandwidth": {"size": 65536, "refill_time": 100},
                             "ops": {"size": 100, "one_time_burst": 10, "refill_time": 1000}}},
           expect=204)
    c.call("PUT", "/balloon", "/balloon",
           {"amount_mib": 4, "deflate_on_oom": True, "stats_polling_interval_s": 1,
            "free_page_reporting": True}, expect=204)
    c.call("PATCH", "/balloon", "/balloon", {"amount_mib": 2}, expect=204)
    c.call("PATCH", "/balloon/statistics", "/balloon/statistics", {"stats_polling_interval_s": 2},
           expect=204)
    vsock_uds = os.path.join(tmp, "v.sock")
    c.call("PUT", "/vsock", "/vsock", {"guest_cid": 3, "uds_path": vsock_uds}, expect=204)
    c.call("PUT", "/vsock", "/vsock", {"guest_cid": 2, "uds_path": vsock_uds}, expect=400,
           valid_request=False)
    c.call("PUT", "/mmds", "/mmds", {"latest": {"meta-data": {"ami-id": "ami-1"}}}, expect=204)
    c.call("PATCH", "/mmds", "/mmds", {"latest": {"meta-data": {"hostname": "edge-1"}}},
           expect=204)
    _, md = c.call("GET", "/mmds", "/mmds", expect=200)
    check(md == {"latest": {"meta-data": {"ami-id": "ami-1", "hostname": "edge-1"}}},
          f"GET /mmds has the PUT and the PATCH merged: {md}")
    c.call("PUT", "/mmds/config", "/mmds/config",
           {"version": "V2", "network_interfaces": ["eth0"], "ipv4_address": "169.254.169.254"},
           expect=204)
    c.call("PUT", "/mmds/config", "/mmds/config", {"network_interfaces": ["eth9"]}, expect=400)
    _, bal = c.call("GET", "/balloon", "/balloon", expect=200)
    check(bal and bal["amount_mib"] == 2 and bal["stats_polling_interval_s"] == 2,
          "GET /balloon has the PATCHed target and interval")
    c.call("PUT", "/actions", "/actions", {"action_type": "FlushMetrics"}, expect=204)
    # Errors are Error objects too.
    c.call("PUT", "/machine-config", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 8},
           expect=400, valid_request=False)
    c.call("PATCH", "/vm", "/vm", {"state": "Paused"}, expect=400)
    _, cfg = c.call("GET", "/vm/config", "/vm/config", expect=200)
    check(cfg and cfg["drives"][0]["drive_id"] == "rootfs", "vm/config lists the drive")
    check(cfg and cfg.get("entropy", {}).get("rate_limiter", {}).get("ops", {}).get("size") == 100,
          "vm/config lists the entropy device")
    check(cfg and cfg.get("vsock", {}).get("uds_path") == vsock_uds, "vm/config lists vsock")
    check(cfg and cfg.get("mmds-config", {}).get("version") == "V2", "vm/config lists mmds-config")

    c.call("PUT", "/actions", "/actions", {"action_type": "InstanceStart"}, expect=204)
    _, info = c.call("GET", "/", "/", expect=200)
    check(info and info["state"] == "Running", "state is Running after InstanceStart")

    # Post-boot.
    c.call("PATCH", "/vm", "/vm", {"state": "Paused"}, expect=204)
    _, info = c.call("GET", "/", "/", expect=200)
    check(info and info["state"] == "Paused", "state is Paused")
    c.call("PATCH", "/vm", "/vm", {"state": "Resumed"}, expect=204)
    c.call("PATCH", "/drives/{drive_id}", "/drives/rootfs", {"drive_id": "rootfs"}, expect=204)
    c.call("PATCH", "/drives/{drive_id}", "/drives/rootfs",
           {"drive_id": "rootfs",
            "rate_limiter": {"bandwidth": {"size": 1048576, "one_time_burst": 0,
                                           "refill_time": 100}}}, expect=204)
    disk2 = os.path.join(tmp, "rootfs2.img")
    with open(disk2, "wb") as f:
        f.truncate(2 << 20)
    c.call("PATCH", "/drives/{drive_id}", "/drives/rootfs",
           {"drive_id": "rootfs", "path_on_host": disk2}, expect=204)
    # Rate limiters are the only thing this PATCH changes.
    c.call("PATCH", "/network-interfaces/{iface_id}", "/network-interfaces/eth0",
           {"iface_id": "eth0", "rx_rate_limiter": {"ops": {"size": 100, "refill_time": 100}},
            "tx_rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}},
           expect=204)
    c.call("PUT", "/actions", "/actions", {"action_type": "FlushMetrics"}, expect=204)
    c.call("PUT", "/actions", "/actions", {"action_type": "SendCtrlAltDel"}, expect=204)
    c.call("PUT", "/boot-source", "/boot-source", {"kernel_image_path": "/k"}, expect=400)
    c.call("PUT", "/entropy", "/entropy", {}, expect=400)  # pre-boot only
    c.call("PUT", "/vsock", "/vsock", {"guest_cid": 4, "uds_path": vsock_uds + "2"}, expect=400)
    c.call("PUT", "/mmds/config", "/mmds/config", {"network_interfaces": ["eth0"]}, expect=400)
    c.call("PATCH", "/mmds", "/mmds", {"user-data": "#cloud-config"}, expect=204)
    _, md = c.call("GET", "/mmds", "/mmds", expect=200)
    check(md and md.get("user-data") == "#cloud-config", "PATCH /mmds works on a running VM")
    check(stat.S_ISSOCK(os.stat(vsock_uds).st_mode), "the vsock device listens on its uds_path")
    c.call("PATCH", "/balloon", "/balloon", {"amount_mib": 8}, expect=204)
    c.call("PATCH", "/balloon", "/balloon", {"amount_mib": 49}, expect=400)  # more than the guest
    c.call("PATCH", "/balloon/statistics", "/balloon/statistics", {"stats_polling_interval_s": 3},
           expect=204)
    _, st = c.call("GET", "/balloon/statistics", "/balloon/statistics", expect=200)
    check(st and st["target_mib"] == 8 and st["target_pages"] == 2048,
          "GET /balloon/statistics has the running target")
    c.call("GET", "/vm/config", "/vm/config", expect=200)
    # Snapshots: create needs a paused VM; a load is refused once a VM exists (and is done for
    # real in a second process below).
    state_file, mem_file = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
    snapshot = {"snapshot_type": "Full", "snapshot_path": state_file, "mem_file_path": mem_file}
    c.call("PUT", "/snapshot/create", "/snapshot/create", snapshot, expect=400)
    c.call("PATCH", "/vm", "/vm", {"state": "Paused"}, expect=204)
    c.call("PUT", "/snapshot/create", "/snapshot/create", snapshot, expect=204)
    c.call("PATCH", "/vm", "/vm", {"state": "Resumed"}, expect=204)
    load = {"snapshot_path": state_file,
            "mem_backend": {"backend_type": "File", "backend_path": mem_file},
            "resume_vm": True}
    c.call("PUT", "/snapshot/load", "/snapshot/load", load, expect=400)

    # Everything else in the spec: documented as unsupported, answered with a 400 Error.
    for path_template, ops in spec["paths"].items():
        for method in ops:
            if method not in ("get", "put", "patch") or (path_template, method) in c.exercised:
                continue
            path = path_template.replace("{iface_id}", "eth0").replace("{id}", "p0")
            body = None if method == "get" else {}
            # Send without request-schema validation: an empty object is not a valid body for most
            # of these, and the answer must not depend on it.
            conn = UnixHTTPConnection(sock)
            conn.request(method.upper(), path, body=None if body is None else "{}",
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read().decode()
            conn.close()
            what = f"{method.upper()} {path}"
            c.exercised.add((path_template, method))
            check(resp.status == 400, f"{what}: unsupported endpoint answers 400, got {resp.status}")
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {}
            errs = list(c.schema({"$ref": "#/definitions/Error"}).iter_errors(doc))
            check(not errs, f"{what}: the answer is an Error object")
            check("not supported" in doc.get("fault_message", ""),
                  f"{what}: says it is not supported: {raw}")
            print(f"  {what} -> {resp.status} {raw[:100]}")

    all_ops = {(p, m) for p, ops in spec["paths"].items() for m in ops
               if m in ("get", "put", "patch")}
    check(all_ops <= c.exercised, f"every operation exercised: missing {all_ops - c.exercised}")

    vmm.send_signal(signal.SIGTERM)
    out, err = vmm.communicate(timeout=30)
    check(vmm.returncode == 0, f"edgevisor exits 0 on SIGTERM (got {vmm.returncode}): {err.decode()[-500:]}")
    with open(metrics) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    check(len(lines) >= 3, f"metrics: a line per FlushMetrics plus one at exit ({len(lines)})")
    check(all("utc_timestamp_ms" in l for l in lines), "metrics lines carry utc_timestamp_ms")
    check(any("vcpu" in l and "block_rootfs" in l for l in lines),
          "metrics carry vCPU exits and per-drive counters")
    check(any("vsock" in l and "conns_added" in l["vsock"] for l in lines),
          "metrics carry the vsock device's counters")
    with open(log) as f:
        text = f.read()
    check("[contract:" in text and "[info]" in text,
          "PUT /logger moved the log to log_path, with the VM id and level on each line")

    # The snapshot, restored in a new process (the first one has let go of the TAP and the disk).
    sock2 = os.path.join(tmp, "api2.sock")
    vmm2 = start_vmm(binary, sock2, "contract2")
    c2 = Contract(spec, sock2)
    metrics2 = os.path.join(tmp, "metrics2.json")
    c2.call("PUT", "/metrics", "/metrics", {"metrics_path": metrics2}, expect=204)
    c2.call("PUT", "/snapshot/load", "/snapshot/load", load, expect=204)
    _, info = c2.call("GET", "/", "/", expect=200)
    check(info and info["state"] == "Running", "state is Running after a load with resume_vm")
    _, cfg = c2.call("GET", "/vm/config", "/vm/config", expect=200)
    check(cfg and cfg["drives"][0]["path_on_host"] == disk2,
          "the restored VM's drive is the one PATCH /drives put in before the snapshot")
    # The post-boot API on the restored VM.
    c2.call("PATCH", "/vm", "/vm", {"state": "Paused"}, expect=204)
    c2.call("PATCH", "/vm", "/vm", {"state": "Resumed"}, expect=204)
    c2.call("PATCH", "/drives/{drive_id}", "/drives/rootfs",
            {"drive_id": "rootfs", "path_on_host": disk}, expect=204)
    c2.call("PUT", "/actions", "/actions", {"action_type": "SendCtrlAltDel"}, expect=204)
    c2.call("PUT", "/actions", "/actions", {"action_type": "FlushMetrics"}, expect=204)
    with open(metrics2) as f:
        check(any("block_rootfs" in json.loads(l) for l in f if l.strip()),
              "the restored VM's metrics carry its drive")
    vmm2.send_signal(signal.SIGTERM)
    _, err2 = vmm2.communicate(timeout=30)
    check(vmm2.returncode == 0, f"the restored edgevisor exits 0 on SIGTERM: {err2.decode()[-500:]}")

    print(f"contract: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
