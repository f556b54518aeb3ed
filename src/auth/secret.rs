//! The secret's format: `ipxapi_` + the token's id (22 base62 chars) + 32 random base62
//! chars + a 6-char CRC-32 checksum, and minting a token with only its argon2id hash.

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use uuid::Uuid;

use crate::domain::{Scope, Timestamp, Token};

pub const PREFIX: &str = "ipxapi_";
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_LEN: usize = 22;
const RANDOM_LEN: usize = 32;
const CHECK_LEN: usize = 6;
pub const SECRET_LEN: usize = PREFIX.len() + ID_LEN + RANDOM_LEN + CHECK_LEN;

fn base62(mut n: u128, len: usize, out: &mut String) {
    let mut buf = vec![b'0'; len];
    for slot in buf.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.push_str(std::str::from_utf8(&buf).expect("ascii"));
}

fn unbase62(s: &str) -> Option<u128> {
    s.bytes().try_fold(0u128, |acc, c| {
        let d = ALPHABET.iter().position(|a| *a == c)? as u128;
        acc.checked_mul(62)?.checked_add(d)
    })
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Builds a fresh secret for token `id`.
fn new_secret(id: Uuid) -> String {
    let mut random = String::with_capacity(RANDOM_LEN);
    let mut bytes = [0u8; RANDOM_LEN];
    // 62 * 4 = 248: rejecting bytes ≥ 248 keeps every character uniform.
    while random.len() < RANDOM_LEN {
        getrandom::fill(&mut bytes).expect("OS random source");
        for &b in &bytes {
            if b < 248 && random.len() < RANDOM_LEN {
                random.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    format_secret(id, &random)
}

/// A well-formed secret for token `id` with the given 32 base62 characters of randomness
/// (the format is public; only the random part is secret). For tests and tooling.
pub fn format_secret(id: Uuid, random: &str) -> String {
    let mut s = String::with_capacity(SECRET_LEN);
    s.push_str(PREFIX);
    base62(id.as_u128(), ID_LEN, &mut s);
    s.push_str(random);
    let check = crc32(s.as_bytes());
    base62(check as u128, CHECK_LEN, &mut s);
    s
}

/// The token id of a well-formed secret; `None` for anything that is not one of ours.
pub fn parse_secret(secret: &str) -> Option<Uuid> {
    if secret.len() != SECRET_LEN || !secret.starts_with(PREFIX) || !secret.is_ascii() {
        return None;
    }
    let (body, check) = secret.split_at(SECRET_LEN - CHECK_LEN);
    if unbase62(check)? != crc32(body.as_bytes()) as u128 {
        return None;
    }
    unbase62(&body[PREFIX.len()..PREFIX.len() + ID_LEN]).map(Uuid::from_u128)
}

/// Token ids are random (v4): they appear inside secrets, which should not reveal when a
/// token was made.
fn new_token_id() -> Uuid {
    Uuid::new_v4()
}

/// A new token for `team`: the row to store and the secret to show once. Slow (argon2):
/// call it off the async runtime's threads. No scopes means all of them.
pub fn mint(team: Uuid, name: &str, scopes: &[Scope]) -> (Token, String) {
    let id = new_token_id();
    let secret = new_secret(id);
    let hash = Argon2::default()
        .hash_password(secret.as_bytes())
        .expect("argon2 with default params")
        .to_string();
    let scopes = if scopes.is_empty() {
        Scope::all()
    } else {
        scopes.to_vec()
    };
    let token = Token {
        id,
        team_id: team,
        name: name.to_string(),
        scopes,
        hash,
        created_at: Timestamp::now(),
        revoked_at: None,
        zones: None,
        expires: None,
        hint: format!(
            "{PREFIX}…{}",
            &secret[SECRET_LEN - CHECK_LEN - 4..SECRET_LEN - CHECK_LEN]
        ),
        created_by: None,
    };
    (token, secret)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordVerifier;
    use argon2::password_hash::phc::PasswordHash;

    use super::*;

    #[test]
    fn secrets_round_trip_their_id_and_reject_typos() {
        let id = Uuid::now_v7();
        let s = new_secret(id);
        assert_eq!(s.len(), SECRET_LEN);
        assert!(s.starts_with("ipxapi_"));
        assert_eq!(parse_secret(&s), Some(id));
        let mut typo = s.clone().into_bytes();
        typo[30] = if typo[30] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse_secret(std::str::from_utf8(&typo).unwrap()), None);
        assert_eq!(parse_secret("ipxapi_short"), None);
        assert_eq!(parse_secret(&s.replace("ipxapi_", "ipxapx_")), None);
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn minted_tokens_store_only_a_hash_that_verifies() {
        let (token, secret) = mint(Uuid::now_v7(), "t", &[]);
        assert!(!token.hash.contains(&secret[7..]));
        assert!(token.hash.starts_with("$argon2id$"));
        let h = PasswordHash::new(&token.hash).unwrap();
        assert!(Argon2::default().verify_password(secret.as_bytes(), &h).is_ok());
        assert_eq!(token.scopes.len(), Scope::all().len());
    }
}
