/* err.h — Sluice's internal error codes.
 *
 * Every function that can fail returns int: 0 on success, one of the
 * negative codes below on failure. Kafka error codes (proto/kerr.h) are
 * chosen only at the API boundary, from these. */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

enum sl_err {
	SL_OK = 0,
	SL_ENOMEM = -1,     /* allocation failed or a memory limit was hit */
	SL_EPROTO = -2,     /* malformed bytes (wire, batch, object) */
	SL_ELIMIT = -3,     /* a configured or compiled-in limit was exceeded */
	SL_EIO = -4,        /* an I/O call failed */
	SL_ENOTFOUND = -5,  /* the thing named does not exist */
	SL_ECORRUPT = -6,   /* a checksum did not match */
	SL_EEXIST = -7,     /* the thing already exists */
	SL_EINVAL = -8,     /* an argument is out of range */
	SL_EUNSUPPORTED = -9, /* a version, codec or feature we do not implement */
	SL_ETIMEDOUT = -10, /* a deadline passed */
	SL_EBUSY = -11,     /* try again later (backpressure) */
	SL_ESTORE = -12,    /* the object store failed */
	SL_EMETA = -13,     /* the metadata store failed */
	SL_ESEQUENCE = -14, /* an idempotent producer's batch is out of sequence */
	SL_EFENCED = -15,   /* an idempotent producer's epoch is older than the
			       partition's (fenced) */
	/* A transactional id's record refuses a batch (meta.h,
	 * enum meta_batch_result). */
	SL_ETXNUNKNOWN = -16, /* no such id, or another producer id */
	SL_ETXNBUSY = -17,  /* its transaction is completing (retriable) */
	SL_ETXNNOTADDED = -18, /* the partition is not in its transaction */
	SL_ETXNSTATE = -19, /* a producer with an open transaction wrote
			       outside it */
	SL_ETXNSTALE = -20, /* a marker for a transaction already ended there */
};

/* A short, static description of an error code. Never NULL. */
const char *sl_strerror(int err);

#endif
