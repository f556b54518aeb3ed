//! The wire side of plain queries, without hickory and without allocating: a parser that
//! reads the header, the question and an OPT record in place, and a response writer that
//! copies prepared RDATA into a reused buffer, compressing owner names to pointers.
//!
//! Only the common shape takes this path: a QUERY with one IN (or ANY, answered from the IN
//! data as Knot does) question, an uncompressed name, no records but an optional EDNS(0)
//! OPT, and nothing after it. Everything else (other opcodes, TSIG, zone transfers, TYPE0,
//! other classes, malformed messages) goes to the hickory-based path.

use super::snapshot::Key;

pub const HEADER: usize = 12;
const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;
/// QCLASS ANY (RFC 1035 §3.2.5): answered from the IN data.
pub const CLASS_ANY: u16 = 255;
/// EDNS option codes: NSID (RFC 5001), Extended DNS Error (RFC 8914).
pub const OPTION_NSID: u16 = 3;
const OPTION_EDE: u16 = 15;
/// An OPT record with no options: root name, type, class, TTL, RDLENGTH.
pub const OPT_LEN: usize = 11;
/// Pointers reach the first 16 KiB of a message only.
const MAX_POINTER: usize = 0x3FFF;
const DO_BIT: u16 = 0x8000;

/// EDNS(0) as the query asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// The requester's UDP payload size, at least 512 (RFC 6891 §6.2.5).
    pub payload: u16,
    /// DNSSEC OK (RFC 3225).
    pub dnssec_ok: bool,
    /// The query asked for our NSID (RFC 5001).
    pub nsid: bool,
}

/// The OPT record of a response (RFC 6891 §7: every response to a query that had one).
#[derive(Clone, Copy, Debug)]
pub struct Opt<'a> {
    /// Our UDP payload size.
    pub payload: u16,
    /// The query's DO bit, copied (RFC 3225 §3).
    pub dnssec_ok: bool,
    /// Our NSID, when the query asked for it and we have one.
    pub nsid: Option<&'a [u8]>,
}

impl Opt<'_> {
    /// Octets the record takes, options included (an EDE comes on top: it goes only on
    /// responses without records).
    fn len(&self) -> usize {
        OPT_LEN + self.nsid.map_or(0, |n| 4 + n.len())
    }
}

/// A plain query, read in place; its name's lookup key in a buffer the caller reuses.
pub struct Question<'m> {
    pub msg: &'m [u8],
    /// The name as asked (case kept), in wire form with its root label.
    pub qname: &'m [u8],
    pub qtype: u16,
    /// Offset just past the question.
    pub end: usize,
    pub edns: Option<Edns>,
    pub key: &'m Key,
}

impl Question<'_> {
    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.msg[0], self.msg[1]])
    }
}

pub enum Parsed<'m> {
    Plain(Question<'m>),
    /// Not a query (a response, or too short for a header): never answered.
    Ignore,
    /// Anything else: the hickory-based path takes it.
    Other,
}

fn u16_at(m: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(at)?, *m.get(at + 1)?]))
}

/// Reads a message as a plain query, if it is one; its name's key goes to `key`.
pub fn parse<'m>(msg: &'m [u8], key: &'m mut Key) -> Parsed<'m> {
    if msg.len() < HEADER || msg[2] & 0x80 != 0 {
        return Parsed::Ignore;
    }
    let opcode = (msg[2] >> 3) & 0x0F;
    let counts = (u16_at(msg, 4), u16_at(msg, 6), u16_at(msg, 8), u16_at(msg, 10));
    if opcode != 0 || !matches!(counts, (Some(1), Some(0), Some(0), Some(0 | 1))) {
        return Parsed::Other;
    }
    // The name's key is read with the name: one pass over its labels, and a pointer, a bad
    // label or the message's end leaves it to the hickory path.
    let Some(name_end) = key.read(msg, HEADER) else {
        return Parsed::Other;
    };
    let (Some(qtype), Some(qclass)) = (u16_at(msg, name_end), u16_at(msg, name_end + 2)) else {
        return Parsed::Other;
    };
    // Zone transfers, TYPE0 and other classes have their own rules; other meta types (MAILA,
    // MAILB, TSIG as a question...) are answered from the zone as any type, as Knot does.
    if (qclass != CLASS_IN && qclass != CLASS_ANY) || matches!(qtype, 0 | 251 | 252) {
        return Parsed::Other;
    }
    let end = name_end + 4;
    let edns = if msg[11] == 1 {
        match parse_opt(msg, end) {
            Some(e) => Some(e),
            None => return Parsed::Other,
        }
    } else if end != msg.len() {
        return Parsed::Other;
    } else {
        None
    };
    Parsed::Plain(Question {
        msg,
        qname: &msg[HEADER..name_end],
        qtype,
        end,
        edns,
        key,
    })
}

/// An OPT record at `at` that ends the message, version 0, with options that parse.
fn parse_opt(msg: &[u8], at: usize) -> Option<Edns> {
    if *msg.get(at)? != 0 || u16_at(msg, at + 1)? != TYPE_OPT {
        return None;
    }
    let payload = u16_at(msg, at + 3)?;
    let (version, flags) = (*msg.get(at + 6)?, u16_at(msg, at + 7)?);
    let rdlen = u16_at(msg, at + 9)? as usize;
    if version != 0 || at + OPT_LEN + rdlen != msg.len() {
        return None;
    }
    let mut o = at + OPT_LEN;
    let mut nsid = false;
    while o < msg.len() {
        nsid |= u16_at(msg, o)? == OPTION_NSID;
        let len = u16_at(msg, o + 2)? as usize;
        o += 4 + len;
    }
    (o == msg.len()).then_some(Edns {
        payload: payload.max(512),
        dnssec_ok: flags & DO_BIT != 0,
        nsid,
    })
}

/// Where an owner name is in the message being written.
#[derive(Clone, Copy, Debug)]
pub struct Owner(pub u16);

/// Sections, in the order they are written.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Section {
    Answer = 0,
    Authority = 1,
    Additional = 2,
}

/// A record did not fit.
#[derive(Debug)]
pub struct Full;

/// Writes one response into a reused buffer.
pub struct Response<'b> {
    pub buf: &'b mut Vec<u8>,
    /// Largest message; the OPT record's room is kept out of it.
    room: usize,
    counts: [u16; 3],
    section: Section,
    question_end: usize,
    edns: Option<Opt<'b>>,
    /// An Extended DNS Error code for the OPT record (RFC 8914).
    ede: Option<u16>,
    /// The apex in the question (offset) and its wire length: where in-zone names point.
    apex: Option<(u16, u8)>,
    /// A record that had to be sent did not fit: the response goes out truncated.
    pub overflow: bool,
}

impl<'b> Response<'b> {
    /// Starts the response to `q`: header (ID, opcode, RD and CD copied), question as asked.
    /// `limit` is the largest message the client takes; `edns` the OPT we answer with.
    pub fn start(buf: &'b mut Vec<u8>, q: &Question<'_>, limit: usize, edns: Option<Opt<'b>>) -> Self {
        buf.clear();
        buf.extend_from_slice(&q.msg[..2]);
        buf.push(0x80 | (q.msg[2] & 0x01)); // QR, opcode 0, RD
        buf.push(q.msg[3] & 0x10); // CD
        buf.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&q.msg[HEADER..q.end]);
        let reserve = edns.map_or(0, |o| o.len());
        Self {
            buf,
            room: limit.saturating_sub(reserve),
            counts: [0; 3],
            section: Section::Answer,
            question_end: q.end,
            edns,
            ede: None,
            apex: None,
            overflow: false,
        }
    }

    pub fn set_apex(&mut self, at: usize, len: usize) {
        if at <= MAX_POINTER {
            self.apex = Some((at as u16, len as u8));
        }
    }

    pub fn set_authoritative(&mut self, aa: bool) {
        if aa {
            self.buf[2] |= 0x04;
        } else {
            self.buf[2] &= !0x04;
        }
    }

    pub fn set_rcode(&mut self, rcode: u8) {
        self.buf[3] = (self.buf[3] & 0xF0) | (rcode & 0x0F);
    }

    pub fn rcode(&self) -> u8 {
        self.buf[3] & 0x0F
    }

    /// Adds an Extended DNS Error to the OPT record, if there is one: for responses without
    /// records (their room is not reserved).
    pub fn set_ede(&mut self, code: u16) {
        self.ede = Some(code);
    }

    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() <= self.question_end
    }

    /// Moves on to `section` (sections are written in order).
    pub fn section(&mut self, section: Section) {
        debug_assert!(section >= self.section);
        self.section = section;
    }

    /// Writes a record and returns where its RDATA starts. `cut` as in `node`: the RDATA
    /// up to it, then a pointer to the apex, then what follows the apex name.
    pub fn record(&mut self, owner: Owner, rtype: u16, ttl: u32, cut: u8, rdata: &[u8]) -> Result<usize, Full> {
        let compress = match (cut, self.apex) {
            (super::node::NO_CUT, _) | (_, None) => None,
            (cut, Some((at, len))) => Some((cut as usize, at, len as usize)),
        };
        let rdlen = match compress {
            Some((_, _, len)) => rdata.len() - len + 2,
            None => rdata.len(),
        };
        let owner_len = if owner.0 as usize <= MAX_POINTER {
            2
        } else {
            name_len(self.buf, owner.0 as usize)
        };
        if self.buf.len() + owner_len + 10 + rdlen > self.room {
            return Err(Full);
        }
        self.owner(owner);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&[0, 1]);
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&(rdlen as u16).to_be_bytes());
        let start = self.buf.len();
        match compress {
            Some((cut, at, len)) => {
                self.buf.extend_from_slice(&rdata[..cut]);
                self.buf.extend_from_slice(&(0xC000 | at).to_be_bytes());
                self.buf.extend_from_slice(&rdata[cut + len..]);
            }
            None => self.buf.extend_from_slice(rdata),
        }
        self.counts[self.section as usize] += 1;
        Ok(start)
    }

    /// Writes a record owned by a name in the zone that is not in the message yet (an NSEC3
    /// or NSEC record's): its labels below the apex (`labels`, wire form without the root),
    /// then a pointer to the apex. Returns where the owner starts, for the records that
    /// follow it to point at.
    pub fn record_below_apex(&mut self, labels: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Result<usize, Full> {
        let Some((apex, _)) = self.apex else { return Err(Full) };
        if self.buf.len() + labels.len() + 2 + 10 + rdata.len() > self.room {
            return Err(Full);
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(labels);
        self.buf.extend_from_slice(&(0xC000 | apex).to_be_bytes());
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&[0, 1]);
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
        self.counts[self.section as usize] += 1;
        Ok(at)
    }

    fn owner(&mut self, owner: Owner) {
        let at = owner.0 as usize;
        if at <= MAX_POINTER {
            self.buf.extend_from_slice(&(0xC000 | owner.0).to_be_bytes());
        } else {
            copy_name(self.buf, at);
        }
    }

    /// A mark to roll back to: an RRset that does not fit whole is not sent in part.
    pub fn mark(&self) -> (usize, [u16; 3]) {
        (self.buf.len(), self.counts)
    }

    pub fn rollback(&mut self, mark: (usize, [u16; 3])) {
        self.buf.truncate(mark.0);
        self.counts = mark.1;
    }

    /// Writes the counts and the OPT record. An overflow leaves the header, the question
    /// and the OPT with TC set (what Knot sends: RFC 2181 §9, RFC 6891 §7).
    pub fn finish(self) {
        if self.overflow {
            self.buf.truncate(self.question_end);
            self.buf[2] |= 0x02;
        } else {
            for (i, c) in self.counts.iter().enumerate() {
                self.buf[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
            }
        }
        if let Some(opt) = self.edns {
            let flags: u16 = if opt.dnssec_ok { DO_BIT } else { 0 };
            let nsid_len = opt.nsid.map_or(0, |n| 4 + n.len());
            let rdlen = nsid_len + if self.ede.is_some() { 6 } else { 0 };
            self.buf.push(0);
            self.buf.extend_from_slice(&TYPE_OPT.to_be_bytes());
            self.buf.extend_from_slice(&opt.payload.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]); // extended rcode, version
            self.buf.extend_from_slice(&flags.to_be_bytes());
            self.buf.extend_from_slice(&(rdlen as u16).to_be_bytes());
            if let Some(nsid) = opt.nsid {
                self.buf.extend_from_slice(&OPTION_NSID.to_be_bytes());
                self.buf.extend_from_slice(&(nsid.len() as u16).to_be_bytes());
                self.buf.extend_from_slice(nsid);
            }
            if let Some(code) = self.ede {
                self.buf.extend_from_slice(&OPTION_EDE.to_be_bytes());
                self.buf.extend_from_slice(&[0, 2]);
                self.buf.extend_from_slice(&code.to_be_bytes());
            }
            let ar = u16::from_be_bytes([self.buf[10], self.buf[11]]) + 1;
            self.buf[10..12].copy_from_slice(&ar.to_be_bytes());
        }
    }
}

/// Where the message ends by its counts: past its last record. A message longer than that
/// has trailing bytes (FORMERR); `None` when the counts promise more than it holds.
pub fn message_end(msg: &[u8]) -> Option<usize> {
    let mut at = HEADER;
    for _ in 0..u16_at(msg, 4)? {
        at = skip_name(msg, at)? + 4;
    }
    let records = u32::from(u16_at(msg, 6)?) + u32::from(u16_at(msg, 8)?) + u32::from(u16_at(msg, 10)?);
    for _ in 0..records {
        at = skip_name(msg, at)?;
        at += 10 + u16_at(msg, at + 8)? as usize;
    }
    (at <= msg.len()).then_some(at)
}

/// The offset just past the (possibly compressed) name at `at`.
pub(crate) fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *msg.get(at)? {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l if l & 0xC0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Length of the name at `at` once written out in full.
fn name_len(msg: &[u8], at: usize) -> usize {
    let mut out = 1;
    labels(msg, at, |o| out += 1 + msg[o] as usize);
    out
}

/// Appends the name at `at` (following pointers) in full.
fn copy_name(buf: &mut Vec<u8>, at: usize) {
    let mut offsets = [0usize; 128];
    let mut n = 0;
    labels(buf, at, |o| {
        if n < offsets.len() {
            offsets[n] = o;
            n += 1;
        }
    });
    for &o in &offsets[..n] {
        let len = buf[o] as usize;
        buf.extend_from_within(o..o + 1 + len);
    }
    buf.push(0);
}

/// Calls `f` with the offset of each label of the name at `at`, following pointers (at most
/// 64, so a loop ends).
fn labels(msg: &[u8], mut at: usize, mut f: impl FnMut(usize)) {
    let mut hops = 0;
    while let Some(&len) = msg.get(at) {
        if len & 0xC0 == 0xC0 {
            let Some(&lo) = msg.get(at + 1) else { return };
            at = ((len as usize & 0x3F) << 8) | lo as usize;
            hops += 1;
            if hops > 64 {
                return;
            }
            continue;
        }
        if len == 0 || len > 63 || msg.len() < at + 1 + len as usize {
            return;
        }
        f(at);
        at += 1 + len as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, opt: Option<&[u8]>) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())];
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        if let Some(o) = opt {
            m.extend_from_slice(o);
        }
        m
    }

    fn parse_(msg: &[u8]) -> Parsed<'_> {
        parse(msg, Box::leak(Box::default()))
    }

    const OPT_DO: &[u8] = &[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0];

    #[test]
    fn plain_queries_are_read_in_place_and_the_rest_goes_elsewhere() {
        let m = query(b"\x03WWW\x04test\x00", 1, Some(OPT_DO));
        let Parsed::Plain(q) = parse_(&m) else { panic!("plain") };
        assert_eq!((q.id(), q.qtype, q.qname), (0x1234, 1, &b"\x03WWW\x04test\x00"[..]));
        assert_eq!(q.key.as_bytes(), b"\x04test\x03www");
        assert_eq!(
            q.edns,
            Some(Edns {
                payload: 4096,
                dnssec_ok: true,
                nsid: false,
            })
        );
        let plain = query(b"\x04test\x00", 28, None);
        assert!(matches!(parse_(&plain), Parsed::Plain(q) if q.edns.is_none() && q.end == plain.len()));
        let mut trailing = plain.clone();
        trailing.push(0);
        assert!(matches!(parse_(&trailing), Parsed::Other), "trailing bytes");
        assert!(
            matches!(parse_(&query(b"\xc0\x0c", 1, None)), Parsed::Other),
            "a pointer in the question"
        );
        for (qtype, fast) in [
            (252, false),
            (251, false),
            (0, false),
            (253, true),
            (254, true),
            (250, true),
        ] {
            let m = query(b"\x04test\x00", qtype, None);
            assert_eq!(matches!(parse_(&m), Parsed::Plain(_)), fast, "type {qtype}");
        }
        for (class, fast) in [(255u16, true), (3, false), (254, false)] {
            let mut m = plain.clone();
            let at = m.len() - 2;
            m[at..].copy_from_slice(&class.to_be_bytes());
            assert_eq!(matches!(parse_(&m), Parsed::Plain(_)), fast, "class {class}");
        }
        let nsid = [&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 4][..], &[0, 3, 0, 0]].concat();
        assert!(matches!(parse_(&query(b"\x04test\x00", 1, Some(&nsid))), Parsed::Plain(q) if q.edns.unwrap().nsid));
        let mut response = plain.clone();
        response[2] |= 0x80;
        assert!(matches!(parse_(&response), Parsed::Ignore));
        assert!(matches!(parse_(&plain[..11]), Parsed::Ignore));
        let mut v1 = OPT_DO.to_vec();
        v1[6] = 1;
        assert!(
            matches!(parse_(&query(b"\x04test\x00", 1, Some(&v1))), Parsed::Other),
            "EDNS version 1"
        );
        let mut small = OPT_DO.to_vec();
        small[3..5].copy_from_slice(&100u16.to_be_bytes());
        let m = query(b"\x04test\x00", 1, Some(&small));
        assert!(matches!(parse_(&m), Parsed::Plain(q) if q.edns.unwrap().payload == 512));
        let cookie = [&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 12][..], &[0, 10, 0, 8], &[1; 8]].concat();
        assert!(
            matches!(parse_(&query(b"\x04test\x00", 1, Some(&cookie))), Parsed::Plain(_)),
            "options are skipped"
        );
        assert!(
            matches!(parse_(&query(b"\x04test\x00", 1, Some(&cookie[..18]))), Parsed::Other),
            "cut short"
        );
        for len in 0..m.len() {
            let _ = parse_(&m[..len]); // never panics
        }
    }

    #[test]
    fn a_response_compresses_to_the_question_and_truncates_whole() {
        let m = query(b"\x03www\x04test\x00", 15, Some(OPT_DO));
        let Parsed::Plain(q) = parse_(&m) else { panic!() };
        let mut buf = Vec::new();
        let opt = Opt {
            payload: 1232,
            dnssec_ok: true,
            nsid: None,
        };
        let mut r = Response::start(&mut buf, &q, 512, Some(opt));
        r.set_apex(12 + 4, 6);
        r.set_authoritative(true);
        let at = r
            .record(Owner(12), 15, 300, 7, b"\x00\x0a\x04mail\x04test\x00")
            .unwrap();
        r.section(Section::Additional);
        r.record(
            Owner(at as u16 + 2),
            1,
            300,
            super::super::node::NO_CUT,
            &[192, 0, 2, 1],
        )
        .unwrap();
        r.finish();
        let parsed = hickory_proto::op::Message::from_vec(&buf).unwrap();
        assert!(parsed.metadata.authoritative && parsed.metadata.recursion_desired);
        assert_eq!(parsed.answers[0].to_string(), "www.test. 300 IN MX 10 mail.test.");
        assert_eq!(&buf[at..at + 9], b"\x00\x0a\x04mail\xc0\x10", "compressed to the apex");
        assert_eq!(parsed.additionals[0].name.to_string(), "mail.test.");
        assert!(
            parsed
                .edns
                .as_ref()
                .is_some_and(|e| e.flags().dnssec_ok && e.max_payload() == 1232)
        );

        let mut buf = Vec::new();
        let mut r = Response::start(&mut buf, &q, 64, None);
        assert!(
            r.record(Owner(12), 16, 1, super::super::node::NO_CUT, &[7; 60])
                .is_err()
        );
        r.overflow = true;
        r.finish();
        let parsed = hickory_proto::op::Message::from_vec(&buf).unwrap();
        assert!(parsed.metadata.truncation && parsed.answers.is_empty() && parsed.queries.len() == 1);
    }

    #[test]
    fn names_past_the_pointer_range_are_written_in_full() {
        let mut buf = b"\x00\x00\x03www\x04test\x00".to_vec();
        buf.extend_from_slice(&[0xC0, 0x02]);
        copy_name(&mut buf, 12);
        assert_eq!(&buf[14..], b"\x03www\x04test\x00");
        assert_eq!(name_len(&buf, 12), 10);
    }

    #[test]
    fn the_opt_record_carries_our_nsid_and_an_extended_error() {
        let m = query(b"\x04test\x00", 1, Some(OPT_DO));
        let Parsed::Plain(q) = parse_(&m) else { panic!() };
        let mut buf = Vec::new();
        let opt = Opt {
            payload: 1232,
            dnssec_ok: true,
            nsid: Some(b"ns-a"),
        };
        let mut r = Response::start(&mut buf, &q, 512, Some(opt));
        r.set_rcode(5);
        r.set_ede(20);
        r.finish();
        let parsed = hickory_proto::op::Message::from_vec(&buf).unwrap();
        let edns = parsed.edns.as_ref().expect("OPT");
        assert!(edns.flags().dnssec_ok);
        let opts = edns.options();
        assert_eq!(opts.as_ref().len(), 2, "{opts:?}");
        assert!(buf.ends_with(b"\x00\x03\x00\x04ns-a\x00\x0f\x00\x02\x00\x14"));
    }

    #[test]
    fn the_end_of_a_message_is_found_by_its_counts() {
        let m = query(b"\x04test\x00", 1, Some(OPT_DO));
        assert_eq!(message_end(&m), Some(m.len()));
        let mut trailing = m.clone();
        trailing.push(0);
        assert_eq!(message_end(&trailing), Some(m.len()));
        assert_eq!(message_end(&m[..m.len() - 1]), None, "the OPT cut short");
        let mut more = m.clone();
        more[11] = 2;
        assert_eq!(message_end(&more), None, "a record promised and missing");
        assert_eq!(message_end(&[0; 12]), Some(12));
        for len in 0..m.len() {
            let _ = message_end(&m[..len]); // never panics
        }
    }
}
