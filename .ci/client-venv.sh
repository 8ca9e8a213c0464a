#!/usr/bin/env bash
# Makes (once) a separate virtual environment with the real AllenSDK and atldld clients, for the compatibility
# tests: AllenSDK 2.16.2 pins numpy<2 and old pandas/xarray, while the server uses numpy 2, so the
# client runs in its own interpreter and talks to tierserve over HTTP like any user's script.
# AllenSDK and atldld are installed without their (huge) declared dependencies, plus what the import
# chains of allensdk.api.queries.image_download_api, atldld.requests and atldld.utils need.
#
#   bash .ci/client-venv.sh DIR        # idempotent: does nothing if DIR already imports the client
set -euo pipefail
venv=${1:?usage: client-venv.sh VENV_DIR}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
check='import atldld.requests, atldld.utils
from allensdk.api.queries.image_download_api import ImageDownloadApi
api = ImageDownloadApi(base_uri="http://127.0.0.1:9")
assert api.rma_endpoint == "http://127.0.0.1:9/api/v2/data", api.rma_endpoint'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  exit 0
fi
log=$(mktemp)
trap 'status=$?; [ $status -eq 0 ] || cat "$log" >&2; rm -f "$log"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --no-deps allensdk==2.16.2 atldld==0.3.4 >>"$log" 2>&1
# pip reports allensdk's other declared requirements as missing: expected, they are not imported here.
"$venv/bin/pip" install -q "numpy<2" "pandas==1.5.3" "xarray<2023.2.0" requests requests-toolbelt simplejson \
  jinja2 six SimpleITK pynwb pillow appdirs >>"$log" 2>&1 || true
"$venv/bin/python" -c "$check"
