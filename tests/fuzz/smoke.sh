#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan+fuzzer) and runs each briefly.
# usage: smoke.sh SOURCE_ROOT BUILD_DIR SECONDS
# env:   RUNS=N      run each target to N inputs instead of for SECONDS (e.g. RUNS=1000000)
#        TARGETS="a b"   build and run only these targets (default: all fourteen)
#        FUZZ_DEFINES="-DX"  extra compiler flags (a deliberately broken harness, say)
set -euo pipefail
SRC=$1; OUT=$2/fuzz; SECS=${3:-20}
mkdir -p "$OUT"
CC=${FUZZ_CC:-clang}; CXX=${FUZZ_CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "$CXX not found (apt-get install clang libclang-rt-14-dev)"; exit 1; }
ALL="elf virtio_blk net_tx balloon vsock mmds fc_config api bzimage arm64_image appliance_config gpt snapshot bundle"
TARGETS=${TARGETS:-$ALL}
# The targets are meson executables (tests/fuzz/meson.build) that link the layers' libraries,
# built in a clang build of their own. FUZZ_DEFINES gets a build directory of its own too.
FB="$OUT/build${FUZZ_DEFINES:+-$(printf '%s' "$FUZZ_DEFINES" | md5sum | cut -c1-8)}"
if [ ! -f "$FB/build.ninja" ]; then
  # A unity build (tools/test): a cold build of the instrumented layers in less time.
  CC=$CC CXX=$CXX meson setup "$FB" "$SRC" --unity on -Dfuzz=true -Dtests=false -Dfirmware=false \
    -Dwerror=false -Dwarning_level=0 -Dcpp_args="${FUZZ_DEFINES:-}" >"$OUT/setup.log" 2>&1 ||
    { cat "$OUT/setup.log"; exit 1; }
fi
ninja_targets=(tests/fuzz/make_seeds)
for t in $TARGETS; do ninja_targets+=("tests/fuzz/${t}_fuzz"); done
ninja -C "$FB" "${ninja_targets[@]}" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
for t in $TARGETS make_seeds; do
  [ "$t" = make_seeds ] && f=make_seeds || f="${t}_fuzz"
  ln -sf "$FB/tests/fuzz/$f" "$OUT/$f"
done
mkdir -p "$OUT/gpt_corpus" "$OUT/appliance_config_corpus" "$OUT/arm64_image_corpus" "$OUT/elf_corpus" "$OUT/virtio_blk_corpus" "$OUT/net_tx_corpus" "$OUT/balloon_corpus" "$OUT/vsock_corpus" "$OUT/mmds_corpus" "$OUT/fc_config_corpus" \
  "$OUT/api_corpus" "$OUT/bzimage_corpus" "$OUT/snapshot_corpus" "$OUT/bundle_corpus"
# An update bundle's front (header, a manifest, a signature), and a grubenv block on a trial.
python3 - "$OUT/bundle_corpus" <<'PY'
import json, struct, sys
m = json.dumps({"format": 1, "arch": "x86_64", "version": "2.0.0", "min_version": "1.0",
                "slot": {"size": 4096, "sha256": "ab" * 32}, "edgevisor": "x", "kernel": "k",
                "created": 1}).encode()
open(sys.argv[1] + "/bundle", "wb").write(b"EVBUNDL1" + struct.pack("<II", len(m), 0) + m +
                                          bytes(64) + bytes(64))
env = b"# GRUB Environment Block\nslot=A\nnext_slot=B\nnext_tries=3\n"
open(sys.argv[1] + "/grubenv", "wb").write(env + b"#" * (1024 - len(env)))
PY
# Seeds: Firecracker's getting-started requests and the post-boot actions.
printf 'PUT /boot-source\n{"kernel_image_path":"/k","boot_args":"console=ttyS0"}' > "$OUT/api_corpus/boot"
printf 'PUT /drives/rootfs\n{"drive_id":"rootfs","path_on_host":"/r","is_root_device":true,"is_read_only":false}' > "$OUT/api_corpus/drive"
printf 'PUT /machine-config\n{"vcpu_count":2,"mem_size_mib":1024}' > "$OUT/api_corpus/machine"
printf 'PATCH /machine-config\n{"mem_size_mib":64}' > "$OUT/api_corpus/patch"
printf 'PUT /network-interfaces/eth0\n{"iface_id":"eth0","guest_mac":"AA:FC:00:00:00:01","host_dev_name":"tap0"}' > "$OUT/api_corpus/net"
printf 'PUT /metrics\n{"metrics_path":"/m","properties":{"a":"b"}}' > "$OUT/api_corpus/metrics"
printf 'PUT /logger\n{"level":"Debug","show_level":true}' > "$OUT/api_corpus/logger"
printf 'PUT /actions\n{"action_type":"InstanceStart"}' > "$OUT/api_corpus/start"
printf 'PATCH /vm\n{"state":"Paused"}' > "$OUT/api_corpus/pause"
printf 'PATCH /drives/rootfs\n{"drive_id":"rootfs"}' > "$OUT/api_corpus/patchdrive"
printf 'GET /vm/config\n' > "$OUT/api_corpus/get"
printf 'PUT /entropy\n{"rate_limiter":{"bandwidth":{"size":65536,"one_time_burst":4096,"refill_time":100},"ops":{"size":10,"refill_time":1000}}}' > "$OUT/api_corpus/entropy"
# Pre-1.0 field names (src/vmm/config/legacy_fields.h).
printf 'PUT /logger\n{"log_fifo":"/l","metrics_fifo":"/m","level":"Warning"}' > "$OUT/api_corpus/oldlogger"
printf 'PUT /machine-config\n{"vcpu_count":1,"mem_size_mib":64,"ht_enabled":false}' > "$OUT/api_corpus/oldmachine"
printf 'PUT /network-interfaces/eth0\n{"iface_id":"eth0","host_dev_name":"tap0","allow_mmds_requests":true}' > "$OUT/api_corpus/oldnet"
"$OUT/make_seeds" --bzimage "$OUT/bzimage_corpus"
"$OUT/make_seeds" --arm64-image "$OUT/arm64_image_corpus"
"$OUT/make_seeds" --snapshot "$OUT/snapshot_corpus"
cat > "$OUT/fc_config_corpus/seed.json" <<'JSON'
{"boot-source":{"kernel_image_path":"/k","boot_args":"x"},"drives":[{"drive_id":"r","path_on_host":"/r","is_root_device":true}],"machine-config":{"vcpu_count":1,"mem_size_mib":64},"network-interfaces":[{"iface_id":"e","host_dev_name":"t","guest_mac":"AA:FC:00:00:00:01"}],"logger":{"level":"Info"}}
JSON
cat > "$OUT/fc_config_corpus/entropy.json" <<'JSON'
{"boot-source":{"kernel_image_path":"/k"},"entropy":{"rate_limiter":{"bandwidth":{"size":1024,"one_time_burst":0,"refill_time":100},"ops":{"size":0,"refill_time":0}}}}
JSON
cat > "$OUT/fc_config_corpus/pre-1.0.json" <<'JSON'
{"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1,"mem_size_mib":64,"ht_enabled":false},"network-interfaces":[{"iface_id":"e","host_dev_name":"t","allow_mmds_requests":false}],"logger":{"log_fifo":"/l","metrics_fifo":"/m","level":"Info"}}
JSON
cp "$SRC/tests/appliance/appliance.json" "$OUT/appliance_config_corpus/ci.json"
# A real GPT (the appliance's layout, small): its first 34 sectors.
if command -v sfdisk >/dev/null; then
  truncate -s 8M "$OUT/gpt_seed.img"
  printf '%s\n' 'label: gpt' 'start=2048, size=2048, name=ESP' 'size=4096, name=data' |
    sfdisk -q "$OUT/gpt_seed.img" >/dev/null 2>&1 &&
    head -c $((34 * 512)) "$OUT/gpt_seed.img" > "$OUT/gpt_corpus/appliance"
  rm -f "$OUT/gpt_seed.img"
fi
cp "$SRC/image/examples/appliance.json" "$OUT/appliance_config_corpus/example.json"
"$OUT/make_seeds" "$OUT/elf_corpus" "$OUT/virtio_blk_corpus"
cp "$OUT/virtio_blk_corpus/read" "$OUT/net_tx_corpus/seed"
# The balloon's header is 5 bytes (head, queue size, flags) where virtio-blk's is 8: the same
# RAM image, its header cut to fit.
{ head -c 5 "$OUT/virtio_blk_corpus/read"; tail -c +9 "$OUT/virtio_blk_corpus/read"; } \
  > "$OUT/balloon_corpus/seed"
# vsock: a guest connection to host port 1 (which the harness listens on) that sends data, takes
# a credit update, half-closes and resets; each packet is 2 length bytes, an RX size byte, then it.
python3 - "$OUT/vsock_corpus/seed" <<'PY'
import struct, sys
def pkt(op, data=b"", flags=0):
    body = struct.pack("<QQIIIHHIII", 3, 2, 1024, 1, len(data), 1, op, flags, 65536, 0) + data
    return struct.pack("<HB", len(body), 64) + body
seed = pkt(1) + pkt(5, b"hello host") + pkt(6) + pkt(7) + pkt(4, flags=2) + pkt(5, b"x" * 300) + pkt(3)
open(sys.argv[1], "wb").write(seed)
PY
# mmds: a guest's handshake, request and FIN to 169.254.169.254:80, and an ARP request for it;
# each frame is 2 length bytes, then it.
python3 - "$OUT/mmds_corpus/seed" <<'PY'
import struct, sys
def tcp(flags, seq, ack, data=b""):
    t = struct.pack(">HHIIBBHHH", 40000, 80, seq, ack, 0x50, flags, 65535, 0, 0) + data
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(t), 1, 0, 64, 6, 0,
                     bytes([10, 0, 0, 2]), bytes([169, 254, 169, 254]))
    f = bytes(6) + bytes([0x52, 0x54, 0, 0, 0, 1]) + b"\x08\x00" + ip + t
    return struct.pack("<H", len(f)) + f
arp = (b"\xff" * 6 + bytes([0x52, 0x54, 0, 0, 0, 1]) + b"\x08\x06" +
       struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + bytes([0x52, 0x54, 0, 0, 0, 1, 10, 0, 0, 2]) +
       bytes(6) + bytes([169, 254, 169, 254]))
req = b"GET /latest/meta-data/id HTTP/1.1\r\nAccept: application/json\r\n\r\n"
seed = (struct.pack("<H", len(arp)) + arp + tcp(2, 1000, 0) + tcp(16, 1001, 1) +
        tcp(24, 1001, 1, req) + tcp(17, 1001 + len(req), 2))
open(sys.argv[1], "wb").write(seed)
PY
printf 'PUT /vsock\n{"guest_cid":3,"uds_path":"/tmp/v.sock"}' > "$OUT/api_corpus/vsock"
printf 'PUT /balloon\n{"amount_mib":64,"deflate_on_oom":true,"stats_polling_interval_s":1,"free_page_reporting":true}' > "$OUT/api_corpus/balloon"
printf 'PATCH /balloon\n{"amount_mib":8}' > "$OUT/api_corpus/patchballoon"
# libFuzzer exits 77 on a crash by default, which meson would read as "skipped": any failure
# of a target is reported as exit 1, with the crash report. A target that ran but did little is
# a failure too: fewer than MIN_EXECS inputs (it stopped early), or less coverage than its floor
# below (a harness that returns before the code it fuzzes). The floors are about half of what
# each target reached in 20 s on the 2-core development machine (2026-12-01); a target
# that has lost its code under test stays far below, at the few dozen edges of the harness alone.
# (reached in 20 s: elf 451, virtio_blk 279, net_tx 225, fc_config 1870, api 2475, bzimage 304,
# arm64_image 41, appliance_config 2663, gpt 105; snapshot 1542 on 2026-12-02; balloon 183 on
# 2026-12-02; vsock 675 and mmds 970 on 2026-12-03; bundle 1680 in 10 s on 2026-12-03)
declare -A FLOOR=([elf]=220 [virtio_blk]=140 [net_tx]=110 [balloon]=90 [vsock]=330 [mmds]=480 [fc_config]=900 [api]=1200
                  [bzimage]=150 [arm64_image]=25 [appliance_config]=1300 [gpt]=60 [snapshot]=750
                  [bundle]=800)
MIN_EXECS=${MIN_EXECS:-1000}
if [ -n "${RUNS:-}" ]; then limit=(-runs="$RUNS"); else limit=(-max_total_time="$SECS"); fi
status=0
printf '%-17s %10s %8s %6s %6s %6s\n' target executions exec/s cov ft corpus
for t in $TARGETS; do
  set +e
  "$OUT/${t}_fuzz" "${limit[@]}" -max_len=65544 -print_final_stats=1 \
    -artifact_prefix="$OUT/${t}-" "$OUT/${t}_corpus" > "$OUT/${t}.log" 2>&1
  rc=$?
  set -e
  execs=$(awk '/^stat::number_of_executed_units:/{print $2}' "$OUT/${t}.log")
  rate=$(awk '/^stat::average_exec_per_sec:/{print $2}' "$OUT/${t}.log")
  cov=$(grep -oE ' cov: [0-9]+' "$OUT/${t}.log" | tail -1 | grep -oE '[0-9]+' || true)
  ft=$(grep -oE ' ft: [0-9]+' "$OUT/${t}.log" | tail -1 | grep -oE '[0-9]+' || true)
  corp=$(grep -oE ' corp: [0-9]+' "$OUT/${t}.log" | tail -1 | grep -oE '[0-9]+' || true)
  printf '%-17s %10s %8s %6s %6s %6s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  why=
  if [ "$rc" -ne 0 ]; then why="exited $rc (crash input saved as $OUT/${t}-*)"
  elif [ -z "$execs" ] || [ "$execs" -lt "$MIN_EXECS" ]; then why="ran only ${execs:-no} inputs (at least $MIN_EXECS expected)"
  elif [ -z "$cov" ] || [ "$cov" -lt "${FLOOR[$t]}" ]; then why="covered only ${cov:-no} edges (its floor is ${FLOOR[$t]})"
  fi
  if [ -n "$why" ]; then
    echo "FAILED: $t $why"
    grep -A40 "ERROR" "$OUT/${t}.log" | head -60 || tail -20 "$OUT/${t}.log"
    status=1
  fi
done
exit $status
