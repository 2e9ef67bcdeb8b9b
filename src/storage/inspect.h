/* inspect.h — human-readable dumps of objects, for `sluice inspect` (as
 * database projects ship dump tools for their formats).
 *
 * The dump shows the header (magic, version), the footer index (topic id
 * as UUID text, partition, byte offset, length, record count) and, for
 * each entry, the header of every record batch in its byte range. It
 * checks every CRC it passes (header, footer, each batch) and says which
 * one failed.
 *
 * verbosity: 0 or 1 print the above; >= 2 also print each record's offset
 * delta, timestamp delta, key and value lengths and header count
 * (compressed batches are decompressed for this). */
#ifndef SLUICE_INSPECT_H
#define SLUICE_INSPECT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct objstore;

/* Dump the object of len bytes at obj to out. Returns 0 when the object
 * is sound, SL_ECORRUPT (a CRC or magic mismatch), SL_EPROTO (malformed:
 * lengths, offsets, batch framing, record counts that disagree),
 * SL_EUNSUPPORTED (unknown version) or SL_ENOMEM; the problem is printed
 * on out as a line starting with "error:". The dump goes on past a bad
 * batch where it can, and returns the first error seen. */
int inspect_object(FILE *out, const uint8_t *obj, size_t len, int verbosity);

/* The same for the object stored under key, read with ranged gets
 * (head, trailer, footer, header, then each entry's range). Also returns
 * the store's errors (SL_ENOTFOUND, SL_EIO, SL_ESTORE...), printed too. */
int inspect_object_key(FILE *out, struct objstore *s, const char *key, int verbosity);

#endif
