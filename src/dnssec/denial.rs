//! The records that deny existence: NSEC (RFC 4034 §4) and NSEC3 (RFC 5155) with the
//! parameters RFC 9276 asks for (SHA-1, no extra iterations, no salt, no opt-out), their
//! type bitmaps, and NSEC3's hashed owner names. Pure and allocation-free where answers use
//! it (hashing, base32hex).

use super::types;

/// NSEC3 hash algorithm 1: SHA-1.
const SHA1: u8 = 1;
pub const HASH_LEN: usize = 20;
/// Characters of a hashed owner label: 20 octets in base32hex.
pub const LABEL_LEN: usize = 32;

/// NSEC3PARAM RDATA: SHA-1, no flags, no extra iterations, no salt (RFC 9276 §3.1).
pub const NSEC3PARAM_RDATA: [u8; 5] = [SHA1, 0, 0, 0, 0];

/// The NSEC3 hash of a name (wire form, lowercase) with no salt and no extra iterations.
pub fn hash(name: &[u8]) -> [u8; HASH_LEN] {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, name);
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(d.as_ref());
    out
}

const BASE32HEX: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// A hash as its owner label, in lowercase base32hex without padding (RFC 4648 §7).
pub fn label(hash: &[u8; HASH_LEN]) -> [u8; LABEL_LEN] {
    let mut out = [0u8; LABEL_LEN];
    for (i, chunk) in hash.chunks_exact(5).enumerate() {
        let v = chunk.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        for j in 0..8 {
            out[i * 8 + j] = BASE32HEX[((v >> (35 - 5 * j)) & 31) as usize];
        }
    }
    out
}

/// The hash a base32hex owner label stands for, any case; `None` for anything else.
pub fn unlabel(label: &[u8]) -> Option<[u8; HASH_LEN]> {
    if label.len() != LABEL_LEN {
        return None;
    }
    let mut out = [0u8; HASH_LEN];
    for (i, chunk) in label.chunks_exact(8).enumerate() {
        let mut v = 0u64;
        for &c in chunk {
            let d = BASE32HEX.iter().position(|&x| x == c.to_ascii_lowercase())?;
            v = v << 5 | d as u64;
        }
        out[i * 5..i * 5 + 5].copy_from_slice(&v.to_be_bytes()[3..]);
    }
    Some(out)
}

/// The type bitmap of RFC 4034 §4.1.2 for `types` (sorted, without duplicates).
pub fn bitmap(types: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    let mut i = 0;
    while i < types.len() {
        let window = (types[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while i < types.len() && (types[i] >> 8) as u8 == window {
            let low = (types[i] & 0xFF) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    out
}

/// Whether a type bitmap holds `rtype`.
pub fn has_type(bitmap: &[u8], rtype: u16) -> bool {
    let (window, low) = ((rtype >> 8) as u8, (rtype & 0xFF) as usize);
    let mut at = 0;
    while at + 2 <= bitmap.len() {
        let (w, len) = (bitmap[at], bitmap[at + 1] as usize);
        let bits = &bitmap[at + 2..(at + 2 + len).min(bitmap.len())];
        if w == window {
            return bits.get(low / 8).is_some_and(|b| b & (0x80 >> (low % 8)) != 0);
        }
        at += 2 + len;
    }
    false
}

/// NSEC3 RDATA: the RFC 9276 parameters, the next hashed owner, the type bitmap.
pub fn nsec3_rdata(next: &[u8; HASH_LEN], bitmap: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + HASH_LEN + bitmap.len());
    out.extend_from_slice(&[SHA1, 0, 0, 0, 0, HASH_LEN as u8]);
    out.extend_from_slice(next);
    out.extend_from_slice(bitmap);
    out
}

/// Where the type bitmap of NSEC3 RDATA made by `nsec3_rdata` starts.
pub const NSEC3_BITMAP_AT: usize = 6 + HASH_LEN;

/// NSEC RDATA: the next owner name (wire form, lowercase), the type bitmap.
pub fn nsec_rdata(next: &[u8], bitmap: &[u8]) -> Vec<u8> {
    [next, bitmap].concat()
}

/// The types a denial record of a name lists: those it holds, RRSIG when any of them is
/// signed, and the denial type itself for NSEC (RFC 4034 §4.1.2; NSEC3 lists neither
/// itself nor, at an empty non-terminal, anything: RFC 5155 §3.2.1).
pub fn listed(held: impl Iterator<Item = u16>, signed: bool, nsec: bool) -> Vec<u16> {
    let mut t: Vec<u16> = held.filter(|&t| t != types::NSEC && t != types::RRSIG).collect();
    if signed {
        t.push(types::RRSIG);
    }
    if nsec {
        t.push(types::NSEC);
    }
    t.sort_unstable();
    t.dedup();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_those_ldns_computes() {
        // RFC 9276's parameters, as `ldns-nsec3-hash -t 0 example.` prints it.
        assert_eq!(&label(&hash(b"\x07example\x00")), b"3msev9usmd4br9s97v51r2tdvmr9iqo1");
        let h = hash(b"\x01a\x07example\x00");
        assert_eq!(unlabel(&label(&h)), Some(h));
        assert_eq!(unlabel(&label(&h).to_ascii_uppercase()), Some(h));
        assert_eq!(unlabel(b"not-a-label"), None);
    }

    #[test]
    fn type_bitmaps_follow_rfc_4034_s_example() {
        // RFC 4034 §4.3: A MX RRSIG NSEC TYPE1234.
        let b = bitmap(&[1, 15, 46, 47, 1234]);
        let mut rfc = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        rfc.extend_from_slice(&[0; 26]);
        rfc.push(0x20);
        assert_eq!(b, rfc);
        for t in [1, 15, 46, 47, 1234] {
            assert!(has_type(&b, t), "{t}");
        }
        for t in [2, 16, 48, 1235, 4000] {
            assert!(!has_type(&b, t), "{t}");
        }
        assert!(bitmap(&[]).is_empty(), "an empty non-terminal lists nothing");
        assert_eq!(listed([16, 1, 1].into_iter(), true, true), [1, 16, 46, 47]);
    }
}
