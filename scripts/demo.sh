#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL, a gateway and an agent on embedded defaults, then what arrived.
set -euo pipefail
echo "pgotel demo: the agent and the gateway are not built yet; the demo arrives with the gateway." >&2
exit 1
