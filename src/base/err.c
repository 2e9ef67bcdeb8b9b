/* err.c — descriptions of Sluice's internal error codes. */
#include "base/err.h"

const char *sl_strerror(int err)
{
	switch (err) {
	case SL_OK: return "ok";
	case SL_ENOMEM: return "out of memory";
	case SL_EPROTO: return "malformed input";
	case SL_ELIMIT: return "limit exceeded";
	case SL_EIO: return "i/o error";
	case SL_ENOTFOUND: return "not found";
	case SL_ECORRUPT: return "checksum mismatch";
	case SL_EEXIST: return "already exists";
	case SL_EINVAL: return "invalid argument";
	case SL_EUNSUPPORTED: return "unsupported";
	case SL_ETIMEDOUT: return "timed out";
	case SL_EBUSY: return "busy";
	case SL_ESTORE: return "object store error";
	case SL_EMETA: return "metadata store error";
	case SL_ESEQUENCE: return "out of order sequence";
	case SL_EFENCED: return "producer epoch fenced";
	case SL_ETXNUNKNOWN: return "unknown transactional producer";
	case SL_ETXNBUSY: return "transaction completing";
	case SL_ETXNNOTADDED: return "partition not in the transaction";
	case SL_ETXNSTATE: return "invalid transaction state";
	case SL_ETXNSTALE: return "stale transaction marker";
	}
	return "unknown error";
}
