# The benchmark zone and query mix shared by dnsperf.sh and callgrind.sh. Sourced, not run.
#
#   gen_zone ZONE NAMES FILE        a zone of NAMES hosts (A), a CNAME per ten, MX, wildcard
#   gen_queries ZONE NAMES COUNT FILE
#       70% A hits, 10% NODATA, 10% NXDOMAIN, 5% CNAME, 3% MX, 2% wildcard (seeded: every run
#       and every server gets the same questions)

gen_zone() {
  local zone=$1 names=$2 out=$3
  {
    echo "\$ORIGIN $zone."
    echo "\$TTL 300"
    echo "@ IN SOA ns1.ipx.test. hostmaster.ipx.test. 1 7200 3600 1209600 300"
    echo "@ IN NS ns1.ipx.test."
    echo "@ IN NS ns2.ipx.test."
    echo "@ IN MX 10 mail"
    echo "mail IN A 192.0.2.25"
    echo "*.wild IN A 192.0.2.9"
    for ((i = 0; i < names; i++)); do
      echo "host$i IN A 10.$((i >> 16 & 255)).$((i >> 8 & 255)).$((i & 255))"
      if ((i % 10 == 0)); then echo "alias$i IN CNAME host$i"; fi
    done
  } >"$out"
}

gen_queries() {
  python3 - "$2" "$1" "$3" >"$4" <<'PY'
import random, sys
n, zone, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
random.seed(7)
for _ in range(count):
    r = random.random(); i = random.randrange(n)
    if r < 0.70: print(f"host{i}.{zone} A")
    elif r < 0.80: print(f"host{i}.{zone} AAAA")
    elif r < 0.90: print(f"nx{i}.{zone} A")
    elif r < 0.95: print(f"alias{i - i % 10}.{zone} A")
    elif r < 0.98: print(f"{zone} MX")
    else: print(f"x{i}.wild.{zone} A")
PY
}
