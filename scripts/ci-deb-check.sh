#!/usr/bin/env bash
# CI after the tests (issue 14): build the .deb, install it on this machine with apt, use the
# installed programs (version, help, man page, a pack + install + rollback round trip), purge it,
# and check that nothing is left but the documented leftovers (docs/packaging.md): none when the
# package's directories were empty. Runs as root; the machine is as it was afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

if dpkg -s fussy >/dev/null 2>&1; then
  echo "ci-deb-check: a fussy package is installed on this machine already; not touching it" >&2
  exit 1
fi
out=$(mktemp -d)
work=$(mktemp -d)
deb=$(node scripts/package-deb.mjs --out "$out")
export DEBIAN_FRONTEND=noninteractive
# Set before the install: a postinst that fails must not leave the package on the machine.
trap 'apt-get purge -y -qq fussy >/dev/null 2>&1 || true; rm -rf "$out" "$work" /var/lib/fussy/ci-keep /etc/fussy/keys/ci-keep; rmdir /var/lib/fussy /etc/fussy/keys /etc/fussy 2>/dev/null || true' EXIT
apt-get install -y -qq "$deb" >/dev/null
cd "$work"
[ "$(fussy --version)" = "$(node -p "require('$OLDPWD/package.json').version")" ]
fussy-install --help | grep -q 'Usage: fussy-install'
man fussy | grep -q 'remote cron add'
man 5 fussyd.conf | grep -q 'schedule-notify'
mkdir -p build/rel-1/etc build/rel-2/etc target
echo 1 > build/rel-1/etc/version
echo 2 > build/rel-2/etc/version
fussy keygen signing --name Build --email b@example.com --secret-key signing.key --no-passphrase --keyring keys >/dev/null 2>&1
fussy keygen device --name Dev --email d@example.com --keyring keys >/dev/null 2>&1
for rel in rel-1 rel-2; do
  pkg=$(fussy pack "build/$rel" --signing-key signing.key -o out/ -q)
  fussy install "$pkg" -k keys -t target -q >/dev/null
done
[ "$(readlink target/current)" = rel-2 ]
fussy rollback -t target -q >/dev/null
[ "$(readlink target/current)" = rel-1 ]
[ -d /var/lib/fussy ] && [ "$(stat -c %a /var/lib/fussy)" = 750 ]
if command -v systemd-analyze >/dev/null; then systemd-analyze verify /usr/lib/systemd/system/fussyd.service; fi

files=$(dpkg -L fussy | grep -v '^/\.$' || true)
# What purge must keep: history in the state directory, keys (firmware is outside the package's paths altogether).
echo history > /var/lib/fussy/ci-keep
mkdir -p /etc/fussy/keys && echo key > /etc/fussy/keys/ci-keep
apt-get purge -y -qq fussy >/dev/null
[ "$(cat /var/lib/fussy/ci-keep)" = history ] && [ "$(cat /etc/fussy/keys/ci-keep)" = key ] || { echo "ci-deb-check: purge removed history or keys" >&2; exit 1; }
rm -r /var/lib/fussy /etc/fussy/keys/ci-keep
rmdir /etc/fussy/keys /etc/fussy
left=()
while IFS= read -r f; do
  [ -z "$f" ] && continue
  # directories shared with other packages (/usr/bin, /usr/share/man/...) stay, as they should
  if { [ -e "$f" ] || [ -L "$f" ]; } && ! [ -d "$f" ]; then left+=("$f"); fi
done <<<"$files"
for d in /usr/lib/fussy /etc/fussy /var/lib/fussy; do [ -e "$d" ] && left+=("$d"); done
if [ "${#left[@]}" -gt 0 ]; then
  printf 'ci-deb-check: left after purge: %s\n' "${left[@]}" >&2
  exit 1
fi
echo "ci-deb-check: installed, used and purged $(basename "$deb"): nothing left"
