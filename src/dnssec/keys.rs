//! Signing keys (ring): made fresh as PKCS#8, opened from it, and shown as the DNSKEY and
//! DS records a parent and a validator need (RFC 4034 §2 and §5, RFC 6605, RFC 8080).

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use zeroize::Zeroizing;

use crate::domain::Algorithm;

/// DNSKEY protocol field: always 3 (RFC 4034 §2.1.2).
const PROTOCOL: u8 = 3;

/// A key that does not open: damaged, or not of its algorithm. Never says more.
#[derive(Debug, thiserror::Error)]
#[error("a DNSSEC private key does not open ({0})")]
pub struct KeyError(&'static str);

/// A private key ready to sign.
pub struct KeyPair {
    algorithm: Algorithm,
    inner: Inner,
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.algorithm.mnemonic())
    }
}

impl KeyPair {
    /// A new key: its PKCS#8 document (to seal and store) and the key itself.
    pub fn generate(algorithm: Algorithm) -> (Zeroizing<Vec<u8>>, Self) {
        let rng = SystemRandom::new();
        let doc = match algorithm {
            Algorithm::EcdsaP256Sha256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .expect("the OS random source works");
        let pkcs8 = Zeroizing::new(doc.as_ref().to_vec());
        let pair = Self::from_pkcs8(algorithm, &pkcs8).expect("a key ring just made opens");
        (pkcs8, pair)
    }

    pub fn from_pkcs8(algorithm: Algorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let inner = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &SystemRandom::new())
                    .map(Inner::Ecdsa)
                    .map_err(|_| KeyError("not an ECDSA P-256 key"))?
            }
            Algorithm::Ed25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                .map(Inner::Ed25519)
                .map_err(|_| KeyError("not an Ed25519 key"))?,
        };
        Ok(Self { algorithm, inner })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The DNSKEY public key field: the point's X and Y (RFC 6605 §4), or the Ed25519 key.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Ecdsa(k) => k.public_key().as_ref()[1..].to_vec(), // without the 0x04 prefix
            Inner::Ed25519(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// The signature of `data` in the form RRSIG carries: r ‖ s, or the Ed25519 signature.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        match &self.inner {
            Inner::Ecdsa(k) => k
                .sign(&SystemRandom::new(), data)
                .expect("the OS random source works")
                .as_ref()
                .to_vec(),
            Inner::Ed25519(k) => k.sign(data).as_ref().to_vec(),
        }
    }
}

/// DNSKEY RDATA: flags, protocol 3, algorithm, public key.
pub fn dnskey_rdata(flags: u16, algorithm: Algorithm, public_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + public_key.len());
    out.extend_from_slice(&flags.to_be_bytes());
    out.push(PROTOCOL);
    out.push(algorithm.number());
    out.extend_from_slice(public_key);
    out
}

/// The key tag of a DNSKEY (RFC 4034 Appendix B).
pub fn key_tag(dnskey: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, &b) in dnskey.iter().enumerate() {
        ac += if i & 1 == 0 { u32::from(b) << 8 } else { u32::from(b) };
    }
    ac += (ac >> 16) & 0xFFFF;
    (ac & 0xFFFF) as u16
}

/// Digest types of the DS records shown: SHA-256 (mandatory) and SHA-384.
pub const DIGEST_TYPES: [u8; 2] = [2, 4];

/// The digest of a DS for the DNSKEY at `owner` (wire form, lowercase) (RFC 4034 §5.1.4).
pub fn ds_digest(owner: &[u8], dnskey: &[u8], digest_type: u8) -> Option<Vec<u8>> {
    let alg = match digest_type {
        2 => &ring::digest::SHA256,
        4 => &ring::digest::SHA384,
        _ => return None,
    };
    let mut ctx = ring::digest::Context::new(alg);
    ctx.update(owner);
    ctx.update(dnskey);
    Some(ctx.finish().as_ref().to_vec())
}

/// DS RDATA (also CDS): key tag, algorithm, digest type, digest.
pub fn ds_rdata(owner: &[u8], dnskey: &[u8], digest_type: u8) -> Option<Vec<u8>> {
    let digest = ds_digest(owner, dnskey, digest_type)?;
    let mut out = Vec::with_capacity(4 + digest.len());
    out.extend_from_slice(&key_tag(dnskey).to_be_bytes());
    out.push(*dnskey.get(3)?);
    out.push(digest_type);
    out.extend_from_slice(&digest);
    Some(out)
}

/// DS RDATA in presentation form as `dnssec-dsfromkey` prints it after owner, class and
/// type: `60485 13 2 D4B7…` (the digest in uppercase hex, one string).
pub fn ds_text(rdata: &[u8]) -> String {
    if rdata.len() < 4 {
        return String::new();
    }
    format!(
        "{} {} {} {}",
        u16::from_be_bytes([rdata[0], rdata[1]]),
        rdata[2],
        rdata[3],
        data_encoding::HEXUPPER.encode(&rdata[4..])
    )
}

/// DNSKEY RDATA in presentation form: `257 3 13 <base64>`.
pub fn dnskey_text(rdata: &[u8]) -> String {
    if rdata.len() < 4 {
        return String::new();
    }
    format!(
        "{} {} {} {}",
        u16::from_be_bytes([rdata[0], rdata[1]]),
        rdata[2],
        rdata[3],
        data_encoding::BASE64.encode(&rdata[4..])
    )
}

/// CDS RDATA asking the parent to remove every DS (RFC 8078 §4): `0 0 0 00`.
pub const CDS_DELETE: [u8; 5] = [0, 0, 0, 0, 0];
/// CDNSKEY RDATA asking the same: `0 3 0 AA==`.
pub const CDNSKEY_DELETE: [u8; 5] = [0, 0, 3, 0, 0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tags_and_ds_digests_match_rfc_4034_s_example() {
        // RFC 4034 §5.4: the DNSKEY of dskey.example.com and its DS.
        let key = data_encoding::BASE64
            .decode(
                b"AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==",
            )
            .unwrap();
        let rdata = [&[1, 0, 3, 5][..], &key].concat();
        assert_eq!(key_tag(&rdata), 60485);
        let owner = b"\x06dskey\x07example\x03com\x00";
        let ds = ds_rdata(owner, &rdata, 1);
        assert!(ds.is_none(), "SHA-1 DS are not made");
        let sha256 = ds_rdata(owner, &rdata, 2).unwrap();
        assert_eq!(&sha256[..4], &[0xEC, 0x45, 5, 2]);
        assert_eq!(ds_text(&sha256).split(' ').next(), Some("60485"));
    }

    #[test]
    fn keys_made_sign_and_reopen_from_their_pkcs8() {
        for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let (pkcs8, pair) = KeyPair::generate(alg);
            let again = KeyPair::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(pair.public_key(), again.public_key());
            let public = pair.public_key();
            assert_eq!(public.len(), if alg == Algorithm::Ed25519 { 32 } else { 64 });
            let sig = pair.sign(b"data");
            assert_eq!(sig.len(), 64);
            let verify: &dyn ring::signature::VerificationAlgorithm = match alg {
                Algorithm::EcdsaP256Sha256 => &ring::signature::ECDSA_P256_SHA256_FIXED,
                Algorithm::Ed25519 => &ring::signature::ED25519,
            };
            let point = match alg {
                Algorithm::EcdsaP256Sha256 => [&[4u8][..], &public].concat(),
                Algorithm::Ed25519 => public.clone(),
            };
            ring::signature::UnparsedPublicKey::new(verify, &point)
                .verify(b"data", &sig)
                .unwrap();
            let other = match alg {
                Algorithm::EcdsaP256Sha256 => Algorithm::Ed25519,
                Algorithm::Ed25519 => Algorithm::EcdsaP256Sha256,
            };
            assert!(KeyPair::from_pkcs8(other, &pkcs8).is_err(), "{alg:?} is not {other:?}");
            assert!(KeyPair::from_pkcs8(alg, &pkcs8[..20]).is_err());
        }
    }

    #[test]
    fn presentation_forms_are_those_of_the_bind_tools() {
        let rdata = dnskey_rdata(257, Algorithm::EcdsaP256Sha256, &[0xAB; 64]);
        assert!(dnskey_text(&rdata).starts_with("257 3 13 q6ur"));
        let ds = [0x12, 0x34, 13, 2, 0xDE, 0xAD];
        assert_eq!(ds_text(&ds), "4660 13 2 DEAD");
    }
}
