#!/usr/bin/env bash
# An example `exec` provisioner for ipx (see docs/hosting.md).
#
# ipx runs this once per provisioning step with the job as JSON on stdin:
#   {"step": "create" | "php" | "ssl" | "wordpress", "job": {...}, "site": {...}}
# and, after ipx obtained a certificate (first issue and each renewal):
#   {"step": "install_certificate", "job": {...}, "site": {...},
#    "certificate": {"chain_pem": "...", "private_key_pem": "...", "not_after": "...", ...}}
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
  ssl)       echo "SSL asked for $domain; ipx obtains the certificate" >&2 ;;
  install_certificate)
    # e.g. write the chain and key where nginx reads them (umask 077), then reload nginx.
    dir=${IPX_CERT_DIR:-/tmp/ipx-certs}/$domain
    umask 077
    mkdir -p "$dir"
    python3 -c 'import json,sys; c=json.load(sys.stdin)["certificate"]; open(sys.argv[1],"w").write(c["chain_pem"]); open(sys.argv[2],"w").write(c["private_key_pem"])' \
      "$dir/fullchain.pem" "$dir/privkey.pem" <<<"$job"
    echo "installed the certificate of $domain in $dir" >&2 ;;
  wordpress) echo "installing WordPress on $domain" >&2 ;;
  *)         echo "{\"error\": \"unknown step $step\"}"; exit 1 ;;
esac
