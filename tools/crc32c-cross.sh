#!/bin/sh
# crc32c-cross.sh SOURCE_DIR WORK_DIR — the ARMv8 CRC-32C path, checked on
# an x86 machine: tests/unit/test_crc32c.c (built -DCRC32C_STANDALONE, no
# cmocka) with src/storage/crc32c.c, compiled for aarch64 and run under
# qemu-aarch64 (Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
# qemu-user; `make deps-test` installs them). Three builds, each told
# which path it must have taken, so none can pass on the table alone:
#   gcc                         the CRC32C instructions and the PMULL join
#                               (qemu's "max" and Cortex-A53 CPUs have both);
#   clang -march=armv8-a+crc    the same through clang's target attributes;
#   clang, no +crc              the portable table (crc32c.c's fallback for
#                               older clang without the CRC intrinsics).
# Exits non-zero on a missing tool, a build error or a failed check.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR WORK_DIR" >&2; exit 2; }
src=$1 work=$2
if [ "$(uname -m)" = aarch64 ]; then
	echo "crc32c-cross: on aarch64 unit/test_crc32c runs this path natively"
	exit 0
fi
for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-ld qemu-aarch64 clang; do
	command -v "$tool" >/dev/null || {
		echo "crc32c-cross: $tool is missing (make deps-test installs it)" >&2
		exit 1
	}
done
mkdir -p "$work"
files="$src/tests/unit/test_crc32c.c $src/src/storage/crc32c.c"
flags="-O2 -static -DCRC32C_STANDALONE -I$src/src"
# shellcheck disable=SC2086 # $flags and $files are word lists
aarch64-linux-gnu-gcc $flags $files -o "$work/crc-gcc" -lpthread
# shellcheck disable=SC2086
clang --target=aarch64-linux-gnu -march=armv8-a+crc -fuse-ld="$(command -v aarch64-linux-gnu-ld)" \
	$flags $files -o "$work/crc-clang-crc" -lpthread
# shellcheck disable=SC2086
clang --target=aarch64-linux-gnu -fuse-ld="$(command -v aarch64-linux-gnu-ld)" \
	$flags $files -o "$work/crc-clang" -lpthread
qemu-aarch64 -cpu max "$work/crc-gcc" 1 1
qemu-aarch64 -cpu cortex-a53 "$work/crc-gcc" 1 1
qemu-aarch64 -cpu max "$work/crc-clang-crc" 1 1
qemu-aarch64 -cpu max "$work/crc-clang" 0 0
