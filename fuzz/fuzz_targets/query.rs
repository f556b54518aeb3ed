//! Any bytes a client can send, through the whole answer path: hickory's parser, our
//! handler over a zone with every feature the answer logic has, and the encoder. Run:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run query` (cargo fuzz wants nightly flags).
#![no_main]

use std::sync::{Arc, OnceLock};

use hickory_server::net::xfer::Protocol;
use ipx::dns::{Zones, Handler};
use libfuzzer_sys::fuzz_target;

const ZONE: &str = "$ORIGIN f.test.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n\
@ IN MX 10 mx\nmx IN A 192.0.2.2\nwww IN CNAME f.test.\nl1 IN CNAME l2\nl2 IN CNAME l1\n*.w IN TXT \"w\"\n\
*.c IN CNAME www\na.b.c.d IN AAAA 2001:db8::1\nsub IN NS ns.sub\nns.sub IN A 192.0.2.3\n_s._tcp IN SRV 1 2 3 mx\n";

struct Fixture {
    rt: tokio::runtime::Runtime,
    handler: Handler,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let seed = ipx::zonefile::parse(ZONE, None).expect("fuzz zone parses");
        let (zone, rows) = seed.detached_rows();
        let zones = Zones::default();
        zones.rebuild(vec![(zone, rows)]);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        Fixture {
            rt,
            handler: Handler::new(Arc::new(zones), 1232),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let answers = f.rt.block_on(
            f.handler
                .answer(data.to_vec(), "127.0.0.1:53".parse().unwrap(), protocol),
        );
        for a in answers {
            // Whatever we send must itself be a well-formed message of bounded size.
            assert!(a.len() >= 12);
            if protocol == Protocol::Udp {
                assert!(a.len() <= 1232, "UDP answer of {} octets", a.len());
            }
            hickory_proto::op::Message::from_vec(&a).expect("our answer parses");
        }
    }
});
