#!/usr/bin/env bash
# An example `exec` provisioner for ipx (see docs/hosting.md).
#
# ipx runs this once per provisioning step with the job as JSON on stdin:
#   {"step": "create" | "php" | "ssl" | "wordpress", "job": {...}, "site": {...}}
# Exit 0 when the step is done. Exit non-zero to fail it; the reason shown to the API user
# is the "error" field of a JSON object printed on stdout, or else the last line of stderr.
# A step can run again (after a crash or restart), so make every step safe to repeat.
set -euo pipefail

job=$(cat)
step=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step"])' <<<"$job")
domain=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["site"]["domain"])' <<<"$job")

case "$step" in
  create)    echo "creating vhost for $domain" >&2 ;;   # e.g. render an nginx server block
  php)       echo "switching $domain to PHP $(python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["params"]["php_version"])' <<<"$job")" >&2 ;;
  ssl)       echo "issuing a certificate for $domain" >&2 ;;
  wordpress) echo "installing WordPress on $domain" >&2 ;;
  *)         echo "{\"error\": \"unknown step $step\"}"; exit 1 ;;
esac
