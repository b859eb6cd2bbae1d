#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan+fuzzer) and runs each briefly.
# usage: smoke.sh SOURCE_ROOT BUILD_DIR SECONDS
set -euo pipefail
SRC=$1; OUT=$2/fuzz; SECS=${3:-20}
mkdir -p "$OUT"
CXX=${FUZZ_CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "$CXX not found (apt-get install clang libclang-rt-14-dev)"; exit 1; }
ABSL=$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format)
FLAGS=(-std=c++20 -O1 -g -I"$SRC" -DSPDLOG_FMT_EXTERNAL -DFMT_HEADER_ONLY -D_GNU_SOURCE)
SAN=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
COMMON=("$SRC/src/vmm/guest_memory.cc" "$SRC/src/vmm/loader/elf.cc")
"$CXX" "${FLAGS[@]}" "$SRC/tests/fuzz/make_seeds.cc" -o "$OUT/make_seeds"
"$CXX" "${FLAGS[@]}" "${SAN[@]}" "$SRC/tests/fuzz/elf_fuzz.cc" "${COMMON[@]}" \
  "$SRC/src/vmm/arch/x86_64/arch.cc" "$SRC/src/vmm/arch/x86_64/pvh.cc" \
  "$SRC/src/vmm/arch/x86_64/cpuid.cc" "$SRC/src/vmm/kvm.cc" "$SRC/src/vmm/vcpu.cc" \
  $ABSL -o "$OUT/elf_fuzz"
"$CXX" "${FLAGS[@]}" "${SAN[@]}" "$SRC/tests/fuzz/virtio_blk_fuzz.cc" "${COMMON[@]}" \
  "$SRC/src/devices/virtio/descriptor_chain.cc" "$SRC/src/devices/block/request.cc" \
  $ABSL -o "$OUT/virtio_blk_fuzz"
"$CXX" "${FLAGS[@]}" "${SAN[@]}" "$SRC/tests/fuzz/net_tx_fuzz.cc" "${COMMON[@]}" \
  "$SRC/src/devices/virtio/descriptor_chain.cc" "$SRC/src/devices/net/packet.cc" \
  $ABSL -o "$OUT/net_tx_fuzz"
"$CXX" "${FLAGS[@]}" "${SAN[@]}" "$SRC/tests/fuzz/fc_config_fuzz.cc" \
  "$SRC/src/vmm/config/fc_config.cc" "$SRC/src/vmm/config/vm_config.cc" $ABSL -o "$OUT/fc_config_fuzz"
mkdir -p "$OUT/elf_corpus" "$OUT/virtio_blk_corpus" "$OUT/net_tx_corpus" "$OUT/fc_config_corpus"
cat > "$OUT/fc_config_corpus/seed.json" <<'JSON'
{"boot-source":{"kernel_image_path":"/k","boot_args":"x"},"drives":[{"drive_id":"r","path_on_host":"/r","is_root_device":true}],"machine-config":{"vcpu_count":1,"mem_size_mib":64},"network-interfaces":[{"iface_id":"e","host_dev_name":"t","guest_mac":"AA:FC:00:00:00:01"}],"logger":{"level":"Info"}}
JSON
"$OUT/make_seeds" "$OUT/elf_corpus" "$OUT/virtio_blk_corpus"
set -o pipefail
cp "$OUT/virtio_blk_corpus/read" "$OUT/net_tx_corpus/seed" 2>/dev/null || true
for t in elf virtio_blk net_tx fc_config; do
  echo "--- $t: ${SECS}s"
  "$OUT/${t}_fuzz" -max_total_time="$SECS" -max_len=65544 -print_final_stats=1 \
    "$OUT/${t}_corpus" 2>&1 | tail -4
done
