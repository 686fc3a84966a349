#!/usr/bin/env bash
# npm run test:system (issue 14; docs/packaging.md, "The system test"): the whole product on a
# real Debian 13 (trixie) root. A minimal root made by debootstrap (cached), the .deb installed
# into it with apt from Debian alone, the root provisioned by `fussy provision` from this
# checkout (the factory host), then inside the root (chroot): an update encrypted to the device
# key the provisioning made, fussyd started on loopback, a script run through `fussy remote`,
# the firmware status asked through it, a rollback. Needs root, debootstrap and Debian's mirror.
#
#   FUSSY_SYSTEM_CACHE  where the bootstrapped root and apt's downloads are kept
#                       (default ~/.cache/fussy/system; remove it to bootstrap afresh)
#   FUSSY_MIRROR        the Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
suite=trixie
mirror=${FUSSY_MIRROR:-http://deb.debian.org/debian}
cache=${FUSSY_SYSTEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fussy/system}
started=$(date +%s)
say() { printf 'test:system [%3ss] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() { printf 'test:system: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mount)"
for tool in debootstrap chroot mount openssl; do
  command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install debootstrap)"
done
[ -f dist/bundle/cli.cjs ] || fail "build first: npm run build (npm run test:system does)"

# 1. The base root: debootstrap --variant=minbase, made once and kept.
base=$cache/$suite-minbase
mkdir -p "$cache/apt-archives/partial"
if [ ! -f "$base/.fussy-complete" ]; then
  say "bootstrapping Debian $suite into $base (once; kept in the cache)"
  # A debootstrap killed half way may leave /proc or /sys mounted in it.
  if grep -q " $base/" /proc/mounts; then fail "$base has file systems mounted in it (a debootstrap stopped half way): unmount them, then run again"; fi
  rm -rf --one-file-system "$base"
  debootstrap --variant=minbase "$suite" "$base" "$mirror" >"$cache/debootstrap.log" 2>&1 || fail "debootstrap failed: see $cache/debootstrap.log"
  touch "$base/.fussy-complete"
fi

work=$(mktemp -d /var/tmp/fussy-system-XXXXXX)
root=$work/root
host=$work/host
fussyd_pid=
mounted=()
cleanup() {
  set +e
  if [ -n "$fussyd_pid" ]; then kill "$fussyd_pid" 2>/dev/null; wait "$fussyd_pid" 2>/dev/null; fi
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}"; done
  # Never remove the tree while anything is mounted in it: /dev and the apt cache are the host's.
  if grep -q " $work/" /proc/mounts; then
    echo "test:system: $work still has mounts; not removing it" >&2
  elif [ -z "${FUSSY_KEEP_SYSTEM:-}" ]; then
    rm -rf --one-file-system "$work"
  else
    echo "kept $work" >&2
  fi
}
trap cleanup EXIT
mnt() { mount "$@"; mounted+=("${!#}"); }

say "copying the base root into $root"
cp -a "$base" "$root"
mnt -t proc proc "$root/proc"
mnt --bind /dev "$root/dev"
mnt --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# No service starts inside a root being built (Debian's policy-rc.d convention).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# 2. The package, installed with apt: its dependencies come from Debian 13 alone.
deb=$(node scripts/package-deb.mjs --out "$work")
cp "$deb" "$root/tmp/"
say "apt-get install ./$(basename "$deb") in the root"
in_root apt-get update -qq >/dev/null || fail "apt-get update in the root"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")" >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get install of the .deb in the root"; }
say "in the root: node $(in_root node --version), $(in_root fussy --version | head -1)"
[ "$(in_root fussy --version)" = "$(node -p "require('./package.json').version")" ] || fail "fussy --version in the root"

# 3. The factory host: keys, firmware, the fleet CA, an operator, the config (this checkout's fussy).
fussy() { node "$repo/bin/fussy.js" "$@"; }
mkdir -p "$host/build/factory-1/etc" "$host/build/update-2/etc" "$host/site"
cd "$host"
fussy keygen signing --name 'Release signing' --secret-key site/release.key --public-key site/release.asc --no-passphrase >/dev/null 2>&1
for rel in factory-1 update-2; do
  echo "${rel#*-}" >"build/$rel/etc/version"
  printf '#!/bin/sh\necho "%s post-install $1 $2" >> /var/log/fussy-hooks\n' "$rel" >"build/$rel/.post-install"
  chmod 755 "build/$rel/.post-install"
done
fussy pack build/factory-1 --signing-key site/release.key -o site/ -q >/dev/null
fussy pki init site/ca >/dev/null 2>&1
fussy pki issue --client alice --ca-dir site/ca --out site/alice >/dev/null 2>&1
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat >site/unit.conf <<EOF
[device]
name = system-unit
type = test-appliance

[firmware]
package = factory-1.tar.gz.gpg

[keyring]
trust = release.asc
legacy = refuse

[link-tree]
link = /opt/firmware/current/etc /etc/appliance

[fussyd]
ca = ca
san = 127.0.0.1
listen = 127.0.0.1:$port

[roles]
admin = alice
EOF

# 4. Provision, twice: the second run must change nothing.
say "fussy provision site/unit.conf --root $root"
pub=$(fussy provision site/unit.conf --root "$root" 2>"$work/provision.log") || { cat "$work/provision.log" >&2; fail "provision"; }
sed 's/^/    /' "$work/provision.log"
again=$(fussy provision site/unit.conf --root "$root" 2>&1) || { echo "$again" >&2; fail "a second provision"; }
grep -q '^nothing to do' <<<"$again" || { echo "$again" >&2; fail "a second provision changed something"; }
[ "$(readlink "$root/opt/firmware/current")" = factory-1 ] || fail "current is not the factory release"
[ -d "$root/opt/firmware/failsafe" ] || fail "no failsafe"
[ "$(readlink "$root/etc/appliance/version")" = /opt/firmware/current/etc/version ] || fail "link-tree"
grep -q 'factory-1 post-install /opt/firmware/factory-1 False' "$root/var/log/fussy-hooks" || fail "the factory hook did not run inside the root"
[ -L "$root/etc/systemd/system/multi-user.target.wants/fussyd.service" ] || fail "fussyd not enabled"

# 5. Inside the root: an update encrypted to the device key the provisioning exported.
fpr=$(node --input-type=module -e "const { inspectKeys } = await import('$repo/dist/src/index.js'); console.log((await inspectKeys('$pub'))[0].fingerprint)")
fussy pack build/update-2 --signing-key site/release.key --recipient-key "$pub" -e "$fpr" -o "$root/tmp/" -q >/dev/null || fail "pack the update"
say "fussy install (encrypted to the device key) inside the root"
in_root fussy install /tmp/update-2.tar.gz.gpg -q >/dev/null 2>"$work/install.err" || { cat "$work/install.err" >&2; fail "install of the update inside the root"; }
# Debian 13's node 20.19 warns of experimental WebCrypto algorithms; fussy's programs do not pass that on.
[ ! -s "$work/install.err" ] || { cat "$work/install.err" >&2; fail "fussy install -q printed on stderr"; }
[ "$(readlink "$root/opt/firmware/current")" = update-2 ] || fail "current is not update-2"
[ "$(in_root cat /etc/appliance/version)" = 2 ] || fail "/etc/appliance/version does not follow current"

# 6. fussyd inside the root on loopback; a script through fussy remote.
say "fussyd on 127.0.0.1:$port inside the root"
# chroot itself in the background (it execs env, which execs the launcher, which execs node): $!
# is fussyd, not a subshell whose kill would leave fussyd running.
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 fussyd --config /etc/fussy/fussyd.conf >"$work/fussyd.log" 2>&1 &
fussyd_pid=$!
remote=(--host 127.0.0.1 --port "$port" --cert site/alice/alice.crt --key site/alice/alice.key --ca site/ca/ca.crt)
for _ in $(seq 1 100); do fussy remote "${remote[@]}" whoami >/dev/null 2>&1 && break; sleep 0.2; done
fussy remote "${remote[@]}" whoami >/dev/null || { cat "$work/fussyd.log" >&2; fail "fussyd does not answer"; }
printf '#!/bin/sh\necho "running $(cat /etc/appliance/version) on $(cat /etc/debian_version)"\n' >check.sh
out=$(fussy remote "${remote[@]}" exec ./check.sh) || fail "fussy remote exec"
say "fussy remote exec check.sh: $out"
[ "$out" = "running 2 on $(cat "$root/etc/debian_version")" ] || fail "the script's output: $out"
fussy remote "${remote[@]}" status --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.status.current!=="update-2")process.exit(1)})' || fail "fussy remote status does not show update-2"

# 7. Roll back inside the root.
in_root fussy rollback -q >/dev/null || fail "rollback"
[ "$(readlink "$root/opt/firmware/current")" = factory-1 ] || fail "rollback did not return to factory-1"
grep -q 'factory-1 post-install /opt/firmware/factory-1 False' "$root/var/log/fussy-hooks" || fail "the rollback's hook"
kill "$fussyd_pid" && wait "$fussyd_pid" 2>/dev/null || true
fussyd_pid=
for pid in $(pgrep -f fussyd.js || true); do
  [ "$(readlink "/proc/$pid/root")" != "$root" ] || fail "fussyd (pid $pid) is still running in the root after it was stopped"
done

# 8. An upgrade of the package on the provisioned device: the provisioned fussyd.conf (a
# conffile the package ships commented) and the state stay, and the device still works.
conf_before=$(sha256sum "$root/etc/fussy/fussyd.conf")
up=$(node "$repo/scripts/package-deb.mjs" --out "$work/up" --version-suffix +systemtest1)
cp "$up" "$root/tmp/"
say "upgrade to $(basename "$up") in the root"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$up")" >"$work/apt-up.log" 2>&1 || { cat "$work/apt-up.log" >&2; fail "apt-get install of the upgrade"; }
[ "$(in_root dpkg-query -W -f '${Version}' fussy)" = "$(node -p "require('$repo/package.json').version")+systemtest1" ] || fail "the upgrade is not installed"
[ "$(sha256sum "$root/etc/fussy/fussyd.conf")" = "$conf_before" ] || fail "the upgrade changed the provisioned fussyd.conf"
[ -d "$root/var/lib/fussy/scripts" ] || [ -n "$(ls -A "$root/var/lib/fussy")" ] || fail "the upgrade emptied fussyd's state"
in_root fussy status -q >/dev/null || fail "fussy status after the upgrade"
[ "$(readlink "$root/opt/firmware/current")" = factory-1 ] || fail "the upgrade moved current"
say "passed: Debian $(cat "$root/etc/debian_version") root, $(basename "$deb") installed with apt, provisioned, updated (encrypted), fussyd on loopback ran a script for alice, rolled back, the package upgraded"
