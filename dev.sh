#!/usr/bin/env bash
# The project's two entry points, each complete on a fresh Linux machine with Python >= 3.11:
#   ./dev.sh serve   set up, migrate, load the demo site into an empty knowledge base and run the
#                    development server on http://127.0.0.1:8000
#   ./dev.sh test    set up and run the test suite (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

fail() { echo "dev.sh: $*" >&2; exit 1; }

ensure_python() {
  command -v "$PYTHON" >/dev/null || fail "$PYTHON not found; install Python 3.11 or newer."
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "Python 3.11 or newer is needed; $PYTHON is $("$PYTHON" --version 2>&1)."
}

# Debian and Ubuntu ship Python without venv's pip bootstrap; as root, install it.
create_venv() {
  "$PYTHON" -m venv "$VENV" && return 0
  rm -rf "$VENV"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    local package
    package="python$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
    echo "dev.sh: installing $package..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null &&
      "$PYTHON" -m venv "$VENV" && return 0
  fi
  fail "could not create $VENV (on Debian or Ubuntu: apt-get install python3-venv)"
}

# Install a requirements file into .venv, once per version of that file.
ensure_requirements() {
  local file=$1 stamp
  [ -x "$VENV/bin/python" ] || create_venv
  stamp="$VENV/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-$file"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file"
    touch "$stamp"
  fi
}

# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download cannot work offline). Install it when we can; otherwise say what is missing.
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "dev.sh: installing Debian's chromium for the browser tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  fi
  [ -x /usr/bin/chromium ] && return 0
  if [ "${CI:-}" = true ]; then fail "/usr/bin/chromium is missing and could not be installed"; fi
  echo "dev.sh: /usr/bin/chromium not found (apt-get install chromium); browser tests will be skipped." >&2
}

# The translation catalogs' test compiles each locale/*.po with msgfmt (gettext) and
# compares it with the committed .mo, so a forgotten `manage.py compilemessages` fails.
ensure_gettext() {
  command -v msgfmt >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "dev.sh: installing gettext for the catalogs' test..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null
  fi
  command -v msgfmt >/dev/null && return 0
  if [ "${CI:-}" = true ]; then fail "msgfmt is missing and could not be installed (apt-get install gettext)"; fi
  echo "dev.sh: msgfmt not found (apt-get install gettext); the catalogs' compile test will be skipped." >&2
}

# The accessibility tests inject axe-core, pinned in package-lock.json and installed from
# the npm registry into node_modules/ (never from a CDN), once per version of that file.
ensure_node_modules() {
  local stamp
  if ! command -v npm >/dev/null; then
    if [ "${CI:-}" = true ]; then fail "npm is missing; CI must run the accessibility tests (apt-get install npm)"; fi
    echo "dev.sh: npm not found (apt-get install npm); the accessibility tests will be skipped." >&2
    return 0
  fi
  stamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    npm ci --no-audit --no-fund --loglevel=error || fail "npm ci failed (package-lock.json)"
    touch "$stamp"
  fi
}

case "${1:-}" in
  serve)
    ensure_python
    ensure_requirements requirements.txt
    "$VENV/bin/python" manage.py migrate --noinput
    # First run: the demo site's pages become the knowledge base (nothing when it has sources).
    port=${PORT:-8000}
    case "$port" in *:*) base_url="http://$port" ;; *) base_url="http://127.0.0.1:$port" ;; esac
    "$VENV/bin/python" manage.py kb_demo --base-url "$base_url"
    exec "$VENV/bin/python" manage.py runserver "$port"
    ;;
  test)
    shift
    ensure_python
    ensure_requirements requirements-dev.txt
    ensure_chromium
    ensure_node_modules
    ensure_gettext
    exec "$VENV/bin/python" -m pytest -n "${TEST_WORKERS:-2}" "$@"
    ;;
  *)
    echo "usage: ./dev.sh serve | ./dev.sh test [pytest arguments]" >&2
    exit 2
    ;;
esac
