#!/bin/sh
# A test handler whose install blocks while the file named by the public
# setting "hang" exists, after writing its pid to the file named "marker";
# every operation is appended to the file named "journal".
set -eu
op=$1
here=$(cd "$(dirname "$0")/.." && pwd)
seq=${ConfigSequenceNumber:-0}
settings="$here/config/$seq.settings"
get() { sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p" "$settings" | head -n 1; }
echo "$op $seq" >>"$(get journal)"
if [ "$op" = install ] && [ -f "$(get hang)" ]; then
	echo $$ >"$(get marker)"
	while [ -f "$(get hang)" ]; do sleep 0.1; done
fi
mkdir -p "$here/status"
printf '[{"version":"1.0","status":{"name":"slow","operation":"%s","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"%s done"}}}]\n' "$op" "$op" >"$here/status/$seq.status"
