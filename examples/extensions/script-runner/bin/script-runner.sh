#!/bin/sh
# script-runner: an extension handler of the CustomScript kind. On "enable"
# it reads the newest config/<n>.settings, runs its commandToExecute once
# with /bin/sh in a fresh temporary directory, and reports the outcome in
# status/<n>.status (Azure VM extension status format). A sequence number
# that already has a status file is not run again. Output goes to the log
# folder named in HandlerEnvironment.json, never into the extension tree.
#
# Settings (config/<n>.settings):
#   {"runtimeSettings":[{"handlerSettings":{"publicSettings":{"commandToExecute":"echo hello"}}}]}
#
# Usage: script-runner.sh install|uninstall|update|enable|disable
set -eu

op="${1:-enable}"
here=$(cd "$(dirname "$0")/.." && pwd)

config_dir="$here/config"
status_dir="$here/status"
log_dir="${TMPDIR:-/tmp}"
if [ -f "$here/HandlerEnvironment.json" ]; then
	for key in configFolder statusFolder logFolder; do
		v=$(sed -n "s/.*\"$key\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" "$here/HandlerEnvironment.json" | head -n 1)
		[ -n "$v" ] || continue
		case "$key" in
		configFolder) config_dir="$v" ;;
		statusFolder) status_dir="$v" ;;
		logFolder) log_dir="$v" ;;
		esac
	done
fi

# JSON string body: escape \ and ", turn line breaks and tabs into spaces,
# drop other control characters.
json_escape() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr '\n\r\t' '   ' | tr -d '\000-\010\013\014\016-\037\177'; }

write_status() { # seq operation status code message
	mkdir -p "$status_dir"
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	tmp="$status_dir/.$1.status.tmp"
	printf '[{"version":"1.0","timestampUTC":"%s","status":{"name":"ScriptRunner","operation":"%s","status":"%s","code":%s,"formattedMessage":{"lang":"en-US","message":"%s"}}}]\n' \
		"$now" "$2" "$3" "$4" "$(json_escape "$5")" >"$tmp"
	mv -f "$tmp" "$status_dir/$1.status"
}

# commandToExecute of a settings file: jq or python3 when present, else a
# plain sed that handles commands without escaped quotes.
command_of() {
	if command -v jq >/dev/null 2>&1; then
		jq -r '.runtimeSettings[0].handlerSettings.publicSettings.commandToExecute // empty' "$1"
	elif command -v python3 >/dev/null 2>&1; then
		python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["runtimeSettings"][0]["handlerSettings"]["publicSettings"].get("commandToExecute",""))' "$1"
	else
		sed -n 's/.*"commandToExecute"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | head -n 1
	fi
}

seq=-1
if [ -d "$config_dir" ]; then
	for f in "$config_dir"/*.settings; do
		[ -e "$f" ] || continue
		n=$(basename "$f" .settings)
		case "$n" in *[!0-9]*|'') continue ;; esac
		[ "$n" -gt "$seq" ] && seq=$n
	done
fi

case "$op" in
install | uninstall | update | disable)
	[ "$seq" -ge 0 ] || seq=0
	write_status "$seq" "$op" success 0 "$op done"
	exit 0
	;;
enable) ;;
*)
	echo "usage: $0 install|uninstall|update|enable|disable" >&2
	exit 2
	;;
esac

if [ "$seq" -lt 0 ]; then
	write_status 0 Enable error 1 "no settings file in $config_dir"
	exit 1
fi
if [ -f "$status_dir/$seq.status" ] && grep -Eq '"operation":"Enable","status":"(success|error)"' "$status_dir/$seq.status"; then
	echo "sequence $seq already ran; nothing to do"
	exit 0
fi
cmd=$(command_of "$config_dir/$seq.settings")
if [ -z "$cmd" ]; then
	write_status "$seq" Enable error 1 "settings $seq have no commandToExecute"
	exit 1
fi

mkdir -p "$log_dir"
work=$(mktemp -d)
out="$log_dir/script-runner.$seq.log"
write_status "$seq" Enable transitioning 0 "running"
set +e
(cd "$work" && /bin/sh -c "$cmd") >"$out" 2>&1
rc=$?
set -e
rm -rf "$work"
tail=$(tail -c 512 "$out" | LC_ALL=C tr -cd '\11\12\15\40-\176')
if [ "$rc" -eq 0 ]; then
	write_status "$seq" Enable success 0 "exit 0: $tail"
else
	write_status "$seq" Enable error "$rc" "exit $rc: $tail"
fi
exit "$rc"
