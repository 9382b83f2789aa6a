#!/bin/sh
# A handler that reads its protected settings the way Azure's Linux
# handlers do: HandlerEnvironment.json names the folders,
# config/$ConfigSequenceNumber.settings holds protectedSettings (base64 DER
# CMS) and protectedSettingsCertThumbprint, and the certificate and key sit
# in the extensions directory (the parent of this extension's directory).
# It writes the SHA-256 of what it decrypted to its status file, never the
# clear text.
set -eu
dir=$(pwd)
certdir=$(dirname "$dir")
settings="$dir/config/$ConfigSequenceNumber.settings"
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$settings"; }
tp=$(field protectedSettingsCertThumbprint)
field protectedSettings | base64 -d > "$dir/protected.der"
sum=$(openssl cms -decrypt -inform DER -in "$dir/protected.der" \
	-inkey "$certdir/$tp.prv" -recip "$certdir/$tp.crt" | sha256sum | cut -d' ' -f1)
rm -f "$dir/protected.der"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '[{"version":1.0,"timestampUTC":"%s","status":{"name":"decrypt","operation":"Enable","status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"%s"}}}]\n' \
	"$now" "$sum" > "$dir/status/$ConfigSequenceNumber.status"
echo "decrypted protected settings for sequence $ConfigSequenceNumber"
