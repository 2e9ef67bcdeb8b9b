/* crc32c.h — CRC-32C (Castagnoli), as Kafka's record batches use.
 *
 * crc32c() picks the hardware instruction (SSE4.2 on x86-64, ARMv8 CRC)
 * when the CPU has it, three interleaved lanes joined by a carry-less
 * multiply (PCLMULQDQ, PMULL) when it has that too, and the portable
 * table otherwise; every path is exported so tests can check that they
 * agree and bench/crc_bench can time each. */
#ifndef SLUICE_CRC32C_H
#define SLUICE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (start with 0) over len bytes. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);
/* Returns the hardware result, or the portable one when the CPU lacks it. */
uint32_t crc32c_hardware(uint32_t crc, const void *data, size_t len);
/* The hardware instruction in one lane (what crc32c() uses on a CPU
 * without the carry-less multiply); the portable result without it. */
uint32_t crc32c_hardware_serial(uint32_t crc, const void *data, size_t len);
/* 1 when crc32c() uses a hardware instruction on this CPU. */
int crc32c_hardware_available(void);
/* 1 when it also uses the three-lane path. */
int crc32c_hardware_lanes_available(void);

#endif
