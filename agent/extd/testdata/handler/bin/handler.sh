#!/bin/sh
# A test handler: appends "<op> <sequence> <version>" to the journal named by
# the public setting "journal" (or $JOURNAL_DIR/journal), writes the status
# file of the sequence number, and fails the operation named by the public
# setting "fail" (or sleeps in the one named "hang"); the public setting
# "status" is the status it reports (default success).
set -eu
op=$1
here=$(cd "$(dirname "$0")/.." && pwd)
seq=${ConfigSequenceNumber:-0}
version=$(basename "$here" | sed 's/.*-//')
settings="$here/config/$seq.settings"
get() { [ -f "$settings" ] && sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p" "$settings" | head -n 1; }
journal=$(get journal || true)
[ -n "$journal" ] || journal="$here/../journal"
echo "$op $seq $version" >>"$journal"
[ "$(get fail || true)" = "$op" ] && { echo "told to fail $op" >&2; exit 3; }
[ "$(get hang || true)" = "$op" ] && sleep 60
mkdir -p "$here/status"
msg=$(get message || true)
status=$(get status || true)
[ -n "$status" ] || status=success
printf '[{"version":"1.0","timestampUTC":"2026-01-01T00:00:00Z","status":{"name":"test","operation":"%s","status":"%s","code":0,"formattedMessage":{"lang":"en-US","message":"%s %s"}}}]\n' "$op" "$status" "$op" "$msg" >"$here/status/$seq.status"
