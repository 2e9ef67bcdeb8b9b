#!/bin/sh
# crc32c-cross.sh SOURCE_DIR WORK_DIR — the ARMv8 CRC-32C path, checked on
# an x86 machine: tests/unit/test_crc32c.c (built -DCRC32C_STANDALONE, no
# cmocka) with src/storage/crc32c.c, compiled for aarch64 and run under
# qemu-aarch64 (Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
# qemu-user; `make deps-test` installs them), with the project's warnings
# as errors. Each run is told which path it must take (HW LANES), so none
# can pass on the table alone; every CPU qemu emulates has CRC32 and
# PMULL, so crc32c.c reads the CPU's features through the test's
# getauxval, which hides the bits given as a third argument:
#   gcc, all features            the CRC32C instructions, PMULL join
#   gcc, PMULL hidden (0x10)     the CRC32C instructions in one lane
#   gcc, CRC32 hidden (0x80)     the portable table
#   clang -march=armv8-a+crc     the same as gcc's first two, through
#                                clang's target attributes
#   clang, no +crc               the portable table (crc32c.c's fallback
#                                for older clang without the intrinsics)
# Exits non-zero on a missing tool, a warning, a build error or a failed
# check; 77 (skipped) on an aarch64 machine, which has no such CPU choice.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR WORK_DIR" >&2; exit 2; }
src=$1 work=$2
if [ "$(uname -m)" = aarch64 ]; then
	echo "crc32c-cross: skipped on aarch64 (written for x86 hosts)"
	exit 77
fi
for tool in aarch64-linux-gnu-gcc qemu-aarch64 clang; do
	command -v "$tool" >/dev/null || {
		echo "crc32c-cross: $tool is missing (make deps-test installs it)" >&2
		exit 1
	}
done
mkdir -p "$work"
flags="-O2 -DCRC32C_STANDALONE -I$src/src -Wall -Wextra -Wno-unused-parameter
	-Wno-missing-field-initializers -Werror"
hook="-Dgetauxval=crc32c_test_getauxval"
clang_cross="clang --target=aarch64-linux-gnu"
build() { # NAME COMPILER...: the test and crc32c.c, linked statically
	name=$1
	shift
	# shellcheck disable=SC2086 # $flags and $hook are word lists
	"$@" $flags $hook -c "$src/src/storage/crc32c.c" -o "$work/$name-crc32c.o"
	# shellcheck disable=SC2086
	"$@" $flags -c "$src/tests/unit/test_crc32c.c" -o "$work/$name-test.o"
	"$@" -static "$work/$name-test.o" "$work/$name-crc32c.o" -o "$work/$name" -lpthread
}
build crc-gcc aarch64-linux-gnu-gcc
# shellcheck disable=SC2086 # $clang_cross is a word list
build crc-clang-crc $clang_cross -march=armv8-a+crc
# shellcheck disable=SC2086
build crc-clang $clang_cross
run() { # NAME HW LANES [HWCAP_BITS]
	name=$1
	shift
	qemu-aarch64 -cpu max "$work/$name" "$@"
}
run crc-gcc 1 1
run crc-gcc 1 0 0x10
run crc-gcc 0 0 0x80
run crc-clang-crc 1 1
run crc-clang-crc 1 0 0x10
run crc-clang 0 0
