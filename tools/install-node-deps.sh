#!/bin/sh
# install-node-deps.sh — Node.js (only where it is missing: installing
# Debian's nodejs over a preinstalled one breaks) and the npm packages the
# integration tests use (kafkajs, @platformatic/kafka for incremental
# fetch sessions, and s3rver as the S3 endpoint), into
# tests/integration/js/node_modules.
set -e
if ! command -v node >/dev/null 2>&1; then
	"$(dirname "$0")/install-deps.sh" nodejs npm
fi
dir="$(cd "$(dirname "$0")/../tests/integration/js" && pwd)"
if [ ! -d "$dir/node_modules/kafkajs" ] || [ ! -d "$dir/node_modules/s3rver" ] ||
	[ ! -d "$dir/node_modules/@platformatic/kafka" ]; then
	(cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
fi
