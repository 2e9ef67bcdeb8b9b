#!/bin/sh
# bench/sluice-acl.sh — for bench/ab.py as NEW_BIN (BASE: build/sluice):
# sluice with --authorizer acl and a handful of ACLs in a fresh store:
# ANONYMOUS (the bench driver) may do everything through a literal "*"
# ALLOW ALL on topics and groups and IDEMPOTENT_WRITE on the cluster;
# six more ACLs of other principals are scanned by every check.
BIN=${SLUICE_BIN:-$(dirname "$0")/../build/sluice}
shift # "serve"
DATA=
prev=
for a in "$@"; do [ "$prev" = "--data" ] && DATA=$a; prev=$a; done
echo pw | $BIN users add benchuser --password-stdin --data "$DATA" >/dev/null 2>&1
sqlite3 "$DATA/meta.db" "INSERT INTO acls VALUES
 (2,'*',3,'User:ANONYMOUS','*',2,3),(3,'*',3,'User:ANONYMOUS','*',2,3),
 (4,'kafka-cluster',3,'User:ANONYMOUS','*',12,3),
 (2,'orders-',4,'User:alice','*',3,3),(2,'orders-',4,'User:alice','*',4,3),
 (2,'payments',3,'User:bob','*',4,2),(3,'team-',4,'User:alice','*',3,3),
 (2,'*',3,'User:mallory','*',2,2),(2,'audit',3,'User:*','10.1.2.3',3,3);
 UPDATE cluster SET value = value + 1 WHERE name = 'acl_version';"
exec $BIN serve "$@" --authorizer acl
