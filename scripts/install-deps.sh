#!/usr/bin/env bash
# Installs everything alb needs to build, test and chart on Debian 12 (root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
# A fresh machine may have no package lists yet.
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ] \
   || ! apt-cache show libcaf-dev >/dev/null 2>&1; then
  apt_get update
fi
apt_get install -y --no-install-recommends \
  build-essential cmake git python3 curl ca-certificates \
  libcaf-dev libssl-dev openssl libtomlplusplus-dev prometheus-cpp-dev libboost-test-dev \
  nlohmann-json3-dev libcli11-dev libsqlite3-dev libbenchmark-dev libcurl4-openssl-dev \
  gnuplot-nox fonts-dejavu-core prometheus tmux \
  pkg-config help2man systemd dpkg-dev adduser \
  libxml2-utils
# (libxml2-utils: xmllint checks `alb submit --junit` files in report_it.)
# The status page: civetweb (the HTTP server under prometheus-cpp) for its
# handlers, and headless Chromium for its browser test (tests/status_page_it.py).
apt_get install -y --no-install-recommends libcivetweb-dev chromium
# Node.js and npm for the dashboard type check (tests/dashboards_ts) and the
# JUnit consumer (tests/junit_js); a newer
# node already installed is kept.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_get install -y --no-install-recommends nodejs npm
fi
