#!/bin/sh
# check-schema-version.sh SOURCE_DIR — fails when the metadata schema
# version in the SQLite backend (SCHEMA_VERSION in src/meta/sqlite.c) and
# the one docs/metadata-schema.md states (its "Tables (schema version N)"
# heading and "PRAGMA user_version (N)") differ. A ctest entry.
set -eu
src=$1/src/meta/sqlite.c doc=$1/docs/metadata-schema.md
code=$(sed -n 's/^#define SCHEMA_VERSION \([0-9][0-9]*\).*/\1/p' "$src")
heading=$(sed -n 's/^## Tables (schema version \([0-9][0-9]*\)).*/\1/p' "$doc")
pragma=$(sed -n 's/.*PRAGMA user_version` (\([0-9][0-9]*\)).*/\1/p' "$doc")
if [ -z "$code" ] || [ -z "$heading" ] || [ -z "$pragma" ]; then
	echo "check-schema-version: could not find the version in $src" \
		"(#define SCHEMA_VERSION N) or $doc" \
		"('## Tables (schema version N)', 'PRAGMA user_version\` (N)')" >&2
	exit 1
fi
if [ "$code" != "$heading" ] || [ "$code" != "$pragma" ]; then
	echo "check-schema-version: $src has SCHEMA_VERSION $code but $doc says" \
		"$heading (Tables heading) and $pragma (user_version): update the doc" >&2
	exit 1
fi
echo "schema version $code in code and doc"
