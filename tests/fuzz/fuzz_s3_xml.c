/* fuzz_s3_xml.c — fuzz target for what the S3 client parses from a
 * server (or a credentials file): ListObjectsV2 pages, error bodies,
 * DeleteObjects answers, S3 time stamps and AWS profile files.
 *
 * Input: the first byte picks the parser, the rest is the text. Checks
 * the contracts every input must keep: only the documented error codes,
 * a failed list parse leaves an empty page, every listed key is a
 * string, truncated outputs stay NUL-terminated inside their buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "objstore/s3_int.h"

static void count_error(void *arg, const char *key, const char *code, const char *msg)
{
	if (!key || !code || !msg)
		abort();
	(void)strlen(key);
	(*(size_t *)arg)++;
}

static void check_terminated(const char *s, size_t cap)
{
	if (!memchr(s, 0, cap))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	/* The time and profile parsers take C strings. */
	char *str = malloc(len + 1);
	if (!str)
		return 0;
	memcpy(str, text, len);
	str[len] = 0;

	switch (data[0] % 5) {
	case 0: {
		struct s3_list_page page;
		int rc = s3_xml_list_parse(text, len, &page);
		if (rc != 0 && rc != SL_EPROTO && rc != SL_ELIMIT && rc != SL_ENOMEM)
			abort();
		if (rc != 0 && (page.n != 0 || page.next_token))
			abort();
		for (size_t i = 0; i < page.n; i++)
			if (!page.v[i].key)
				abort();
		s3_list_page_free(&page);
		break;
	}
	case 1: {
		char code[32], msg[64];
		int rc = s3_xml_error_parse(text, len, code, sizeof code, msg, sizeof msg);
		if (rc != 0 && rc != SL_EPROTO)
			abort();
		check_terminated(code, sizeof code);
		check_terminated(msg, sizeof msg);
		if (rc != 0 && (code[0] || msg[0]))
			abort();
		break;
	}
	case 2: {
		size_t deleted = 7, errors = 7, seen = 0;
		int rc = s3_xml_delete_parse(text, len, &deleted, &errors, count_error, &seen);
		if (rc != 0 && rc != SL_EPROTO && rc != SL_ELIMIT)
			abort();
		if (rc != 0 && (deleted || errors))
			abort();
		if (rc == 0 && seen != errors)
			abort();
		break;
	}
	case 3:
		if (s3_time_parse_ms(str) < -1)
			abort();
		break;
	case 4: {
		char id[64], secret[64], token[128];
		int rc = s3_profile_parse(str, "default", id, sizeof id, secret, sizeof secret,
					  token, sizeof token);
		if (rc != 0 && rc != SL_ENOTFOUND)
			abort();
		check_terminated(id, sizeof id);
		check_terminated(secret, sizeof secret);
		check_terminated(token, sizeof token);
		break;
	}
	}
	free(str);
	return 0;
}
