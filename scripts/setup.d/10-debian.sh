#!/usr/bin/env bash
# Debian packages the tests use: socat (pty pairs for the serial link),
# iproute2 (ip and tc: network namespaces, veth pairs, the tbf shaper for
# two-host runs), iperf3 (the network yardstick beside them), valgrind
# (callgrind counts instructions per stage: `perfkit run --measure
# instructions`, scenarios/instructions.toml), strace (a hostile test holds
# `perfkit recv` between two looks at its output).
set -euo pipefail
need=()
for pkg in socat iproute2 iperf3 valgrind strace; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
