#!/usr/bin/env bash
# Collects every Assamese gettext catalogue Debian ships, without installing anything: finds the
# packages holding /usr/share/locale/as/LC_MESSAGES/*.mo with apt-file (Debian's Contents index),
# downloads them with `apt-get download` and extracts only those files. The translation builder
# then reads them: node tools/datasets/translation-as-en.cjs --dir=tmp/catalogues/mo
# The Bengali catalogues of the same packages go to <out>/mo-bn, for the translation students'
# pre-training corpus (node tools/datasets/translation-bn-en.cjs).
# Usage (as root, first time: apt-get install apt-file && apt-file update):
#   bash tools/datasets/assamese-catalogues.sh [out-dir, default tmp/catalogues]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-tmp/catalogues}"
command -v apt-file >/dev/null || { echo "apt-file is missing: apt-get install apt-file && apt-file update" >&2; exit 1; }
mkdir -p "$out/debs" "$out/mo" "$out/mo-bn"
mapfile -t packages < <(apt-file search -x '/usr/share/locale/as/LC_MESSAGES/.*\.mo$' | cut -d: -f1 | sort -u)
echo "assamese catalogues: ${#packages[@]} packages"
(cd "$out/debs" && for p in "${packages[@]}"; do ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -qq "$p" || echo "skipped $p"; done)
for deb in "$out"/debs/*.deb; do
  tmp=$(mktemp -d)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/share/locale/as/LC_MESSAGES/*.mo' './usr/share/locale/bn/LC_MESSAGES/*.mo' 2>/dev/null || true
  for lang in as bn; do
    dest="$out/mo"; [ "$lang" = as ] || dest="$out/mo-$lang"
    for mo in "$tmp"/usr/share/locale/$lang/LC_MESSAGES/*.mo; do
      [ -f "$mo" ] && [ ! -e "$dest/$(basename "$mo")" ] && cp "$mo" "$dest/"
    done
  done
  rm -rf "$tmp"
done
echo "assamese catalogues: $(ls "$out/mo" | wc -l) .mo files in $out/mo; bengali: $(ls "$out/mo-bn" | wc -l) in $out/mo-bn"
