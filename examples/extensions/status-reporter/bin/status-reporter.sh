#!/bin/sh
# status-reporter: a harmless extension handler. On every lifecycle command it
# writes status/<n>.status (the Azure VM extension status format) describing
# the host: name, kernel, uptime and load. It changes nothing on the machine.
#
# Usage: status-reporter.sh install|uninstall|update|enable|disable
set -eu

op="${1:-enable}"
here=$(cd "$(dirname "$0")/.." && pwd)

# Folders come from HandlerEnvironment.json (written by the extension
# manager); without it, fall back to config/ and status/ beside bin/.
config_dir="$here/config"
status_dir="$here/status"
if [ -f "$here/HandlerEnvironment.json" ]; then
	v=$(sed -n 's/.*"configFolder"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$here/HandlerEnvironment.json" | head -n 1)
	[ -n "$v" ] && config_dir="$v"
	v=$(sed -n 's/.*"statusFolder"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$here/HandlerEnvironment.json" | head -n 1)
	[ -n "$v" ] && status_dir="$v"
fi

# The sequence number is that of the newest config/<n>.settings (0 if none).
seq=0
if [ -d "$config_dir" ]; then
	for f in "$config_dir"/*.settings; do
		[ -e "$f" ] || continue
		n=$(basename "$f" .settings)
		case "$n" in *[!0-9]*|'') continue ;; esac
		[ "$n" -gt "$seq" ] && seq=$n
	done
fi

case "$op" in
install) operation=Install ;;
uninstall) operation=Uninstall ;;
update) operation=Update ;;
enable) operation=Enable ;;
disable) operation=Disable ;;
*)
	echo "usage: $0 install|uninstall|update|enable|disable" >&2
	exit 2
	;;
esac

json_escape() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\n\r\t'; }

host=$(json_escape "$(uname -n)")
kernel=$(json_escape "$(uname -sr)")
uptime_s=0
[ -r /proc/uptime ] && uptime_s=$(cut -d. -f1 /proc/uptime)
load=""
[ -r /proc/loadavg ] && load=$(cut -d' ' -f1-3 /proc/loadavg)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
message="host $host, $kernel, up ${uptime_s}s, load $(json_escape "$load")"

mkdir -p "$status_dir"
tmp="$status_dir/.$seq.status.tmp"
cat >"$tmp" <<JSON
[{"version":"1.0","timestampUTC":"$now","status":{"name":"StatusReporter","operation":"$operation","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"$message"}}}]
JSON
mv -f "$tmp" "$status_dir/$seq.status"
echo "$operation: wrote $status_dir/$seq.status"
