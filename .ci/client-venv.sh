#!/usr/bin/env bash
# Makes (once) a separate Python 3.11 virtual environment holding the real AllenSDK and atldld clients,
# for the compatibility tests, which run them in a subprocess against a local tierserve over HTTP.
#
# Why a separate venv: allensdk 2.16.2 needs numpy<2 (allensdk/deprecated.py imports
# numpy.VisibleDeprecationWarning, gone in numpy 2) and declares pandas==1.5.3, xarray<2023.2.0,
# numpy<1.24, scipy<1.11, ...; the server itself uses numpy 2. Installing allensdk with its declared
# dependencies would drag in ~30 more packages (matplotlib, scipy, scikit-image, statsmodels, tables,
# boto3, ...) none of which the HTTP client's import chain touches. So allensdk and atldld are installed
# with --no-deps, plus the exact closure below (wheels only, --no-deps, no resolver).
#
# What the import chain needs (allensdk 2.16.2):
#   allensdk.api.api          -> requests, pandas, requests_toolbelt, simplejson (core.json_utilities)
#   allensdk.core/__init__    -> brain_observatory.comparison_utils -> SimpleITK, xarray, pandas
#                             -> core._data_object_base.readable_interfaces -> pynwb (-> hdmf, h5py,
#                                jsonschema, ruamel.yaml, ...)
#   allensdk.deprecated       -> numpy<2
#   rma_template / image_download_api -> jinja2, six
#   mouse_connectivity_api / reference_space_api -> nrrd (pynrrd), SimpleITK
#   atldld 0.3.4 (atldld.requests, atldld.utils) -> requests, numpy, Pillow, appdirs (its declared
#   opencv-python, scikit-image, matplotlib, click are not imported by those two modules).
# Tested (python 3.11.7, manylinux x86_64, from scratch): the pins below install in ~20 s with a warm
# pip cache, and the check at the bottom passes; ImageDownloadApi's queries go through urllib
# (json_utilities.read_url_get) and its image downloads through requests.get + requests_toolbelt.
#
#   bash .ci/client-venv.sh DIR     # idempotent: does nothing if DIR already passes the import check
#   CLIENT_VENV_PYTHON=python3.11 bash .ci/client-venv.sh DIR   # choose the interpreter (must be 3.11)
set -euo pipefail
venv=${1:?usage: client-venv.sh VENV_DIR}
py=${CLIENT_VENV_PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off PIP_NO_INPUT=1

pins=(
  allensdk==2.16.2 atldld==0.3.4
  numpy==1.23.5 pandas==1.5.3 python-dateutil==4.0.0 pytz==2026.6 tzdata==2026.6 six==1.17.0
  xarray==2023.1.0 packaging==26.3
  simpleitk==2.5.7
  pynwb==2.8.3 hdmf==6.2.0 h5py==3.16.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1
  referencing==0.37.0 rpds-py==2026.9.1 attrs==26.1.0 typing_extensions==4.16.0 ruamel.yaml==0.19.1
  requests==2.34.2 urllib3==2.8.0 idna==3.20 charset-normalizer==3.5.2 certifi==2026.10.18
  requests-toolbelt==1.0.0 simplejson==4.3.0 Jinja2==3.1.6 MarkupSafe==3.0.4
  pynrrd==1.1.3
  pillow==13.0.0 appdirs==1.4.4
)

check='import atldld.requests, atldld.utils
from allensdk.api.queries.image_download_api import ImageDownloadApi
from allensdk.api.queries.rma_api import RmaApi
from allensdk.api.queries.mouse_connectivity_api import MouseConnectivityApi
api = ImageDownloadApi(base_uri="http://127.0.0.1:9")
print(api.rma_endpoint)
assert api.rma_endpoint == "http://127.0.0.1:9/api/v2/data", api.rma_endpoint'

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
  exit 0
fi

"$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
  { echo "client-venv.sh: $py is not Python 3.11 (the pins are cp311 wheels); set CLIENT_VENV_PYTHON" >&2; exit 2; }
if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv" 2>/dev/null)" ]; then
  echo "client-venv.sh: $venv exists and is not a venv; refusing to touch it" >&2; exit 2
fi

log=$(mktemp)
trap 'status=$?; [ $status -eq 0 ] || cat "$log" >&2; rm -f "$log"' EXIT
"$py" -m venv --clear "$venv" >>"$log" 2>&1
# --no-deps: pip then warns that allensdk's/atldld's other declared requirements are missing; expected.
# --no-compile: only the modules actually imported get byte-compiled (at first import), ~40% faster.
"$venv/bin/pip" install -q --no-deps --only-binary=:all: --no-compile "${pins[@]}" >>"$log" 2>&1
"$venv/bin/python" -c "$check"
