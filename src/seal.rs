//! Secrets at rest: the ones ipx must read back (TSIG secrets, DNSSEC private keys, ACME
//! account and certificate keys) are sealed with AES-256-GCM under a key-encryption key (KEK)
//! kept in its own file, outside the database. The database, its backups and its exports
//! only ever hold ciphertext; losing the key file loses those secrets, which is why the
//! store remembers the key's fingerprint and a start with another key is refused.
//!
//! Each value is sealed for a `context` (what it is and whose: `tsig:<id>`), authenticated
//! as associated data, so a ciphertext copied into another row does not open there.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What the key file starts with; the rest of its line is the key in base64.
const KEY_FILE_TAG: &str = "ipx-kek-v1";
/// The first byte of a sealed value: its format.
const SEALED_V1: u8 = 1;
const FINGERPRINT_LEN: usize = 8;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the key file {} is missing, but this database holds secrets sealed under the key with fingerprint {expected}; restore that file from your backup (or point [store] key_file / IPX_STORE_KEY_FILE at it)",
        path.display()
    )]
    Missing { path: PathBuf, expected: String },
    #[error("the key file {}: {why}", path.display())]
    Unusable { path: PathBuf, why: String },
    #[error(
        "the key file {} holds the key with fingerprint {found}, but this database's secrets are sealed under {expected}; point [store] key_file / IPX_STORE_KEY_FILE at the right file",
        path.display()
    )]
    WrongKey {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// A sealed value that does not open: sealed under another key, for another context, or
    /// damaged. Never says more (no oracle).
    #[error("a sealed secret does not open ({0})")]
    Damaged(&'static str),
}

/// The key-encryption key. Cheap to share behind an `Arc`; never printed.
pub struct Sealer {
    key: LessSafeKey,
    fingerprint: [u8; FINGERPRINT_LEN],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer({})", self.fingerprint())
    }
}

impl Sealer {
    /// The key in the file at `path`. `expected` is the fingerprint the database remembers
    /// (`None` for a database that holds no sealed secret yet): a missing file is then
    /// created (0600, in a 0700 directory made if needed), and a file with another key is
    /// refused.
    pub fn unlock(path: &Path, expected: Option<&str>) -> Result<Self, SealError> {
        let unusable = |why: String| SealError::Unusable {
            path: path.to_path_buf(),
            why,
        };
        let sealer = match fs::read_to_string(path) {
            Ok(text) => {
                tighten(path);
                Self::from_file_text(&text).map_err(unusable)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match expected {
                Some(expected) => {
                    return Err(SealError::Missing {
                        path: path.to_path_buf(),
                        expected: expected.to_string(),
                    });
                }
                None => Self::create(path).map_err(unusable)?,
            },
            Err(e) => return Err(unusable(e.to_string())),
        };
        match expected {
            Some(expected) if expected != sealer.fingerprint() => Err(SealError::WrongKey {
                path: path.to_path_buf(),
                found: sealer.fingerprint(),
                expected: expected.to_string(),
            }),
            _ => Ok(sealer),
        }
    }

    /// A key that lives in memory only: for tests and tools that seal nothing durable.
    pub fn ephemeral() -> Self {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).expect("the OS random source works");
        Self::from_raw(&raw)
    }

    fn from_raw(raw: &[u8; 32]) -> Self {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"ipx kek fingerprint\0".as_slice(), raw].concat(),
        );
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&digest.as_ref()[..FINGERPRINT_LEN]);
        let key = UnboundKey::new(&AES_256_GCM, raw).expect("a 32-byte key");
        Self {
            key: LessSafeKey::new(key),
            fingerprint,
        }
    }

    fn from_file_text(text: &str) -> Result<Self, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        let encoded = line
            .and_then(|l| l.strip_prefix(KEY_FILE_TAG))
            .map(str::trim)
            .ok_or_else(|| format!("not an ipx key file (its key line starts with \"{KEY_FILE_TAG} \")"))?;
        let raw = Zeroizing::new(
            data_encoding::BASE64
                .decode(encoded.as_bytes())
                .map_err(|_| "the key is not valid base64".to_string())?,
        );
        let raw: &[u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| format!("the key is {} bytes; it must be 32", raw.len()))?;
        Ok(Self::from_raw(raw))
    }

    fn create(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create its directory: {e}"))?;
        }
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).map_err(|e| format!("no randomness for a new key: {e}"))?;
        let text = Zeroizing::new(format!(
            "# The key-encryption key of an ipx database: it seals the secrets the database holds.\n\
             # Back it up apart from the database; without it those secrets are lost.\n\
             {KEY_FILE_TAG} {}\n",
            data_encoding::BASE64.encode(raw.as_ref())
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot create: {e}"))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write: {e}"))?;
        let sealer = Self::from_raw(&raw);
        tracing::info!(path = %path.display(), fingerprint = %sealer.fingerprint(), "created the key-encryption key; back it up apart from the database");
        Ok(sealer)
    }

    /// Identifies the key without revealing it: what the database remembers.
    pub fn fingerprint(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.fingerprint)
    }

    /// Seals `plaintext` for `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source works");
        let mut out = Vec::with_capacity(1 + FINGERPRINT_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(SEALED_V1);
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .expect("AES-GCM seals any length we hold");
        out.extend_from_slice(&body);
        body.fill(0);
        Sealed(out)
    }

    /// Opens what `seal` sealed for the same `context`.
    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Secret, SealError> {
        let bytes = &sealed.0;
        let head = 1 + FINGERPRINT_LEN + NONCE_LEN;
        if bytes.len() < head + TAG_LEN || bytes[0] != SEALED_V1 {
            return Err(SealError::Damaged("not a sealed value"));
        }
        if bytes[1..1 + FINGERPRINT_LEN] != self.fingerprint {
            return Err(SealError::Damaged("sealed under another key"));
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[1 + FINGERPRINT_LEN..head])
            .map_err(|_| SealError::Damaged("not a sealed value"))?;
        let mut body = Zeroizing::new(bytes[head..].to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| SealError::Damaged("altered, or sealed for something else"))?
            .len();
        body.truncate(len);
        Ok(Secret(body))
    }
}

/// Makes a key file readable by its owner alone.
fn tighten(path: &Path) {
    let Ok(meta) = fs::metadata(path) else { return };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 && fs::set_permissions(path, fs::Permissions::from_mode(0o600)).is_ok() {
        tracing::warn!(path = %path.display(), from = format!("{mode:o}"), "tightened the key file to 0600");
    }
}

/// A sealed secret as stored: opaque bytes, kept in JSON rows as base64.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}

impl Serialize for Sealed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        data_encoding::BASE64
            .decode(text.as_bytes())
            .map(Sealed)
            .map_err(serde::de::Error::custom)
    }
}

/// An opened secret: wiped from memory when dropped, never printed.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let a = Sealer::ephemeral();
        let sealed = a.seal("tsig:1", b"hunter2");
        assert_eq!(a.open("tsig:1", &sealed).unwrap().expose(), b"hunter2");
        assert!(
            !sealed.0.windows(7).any(|w| w == b"hunter2"),
            "no plaintext in the sealed bytes"
        );
        assert!(a.open("tsig:2", &sealed).is_err(), "another row's context");
        assert!(Sealer::ephemeral().open("tsig:1", &sealed).is_err(), "another key");
        let mut flipped = sealed.clone();
        *flipped.0.last_mut().unwrap() ^= 1;
        assert!(a.open("tsig:1", &flipped).is_err(), "altered");
        assert!(a.open("tsig:1", &Sealed(vec![1, 2, 3])).is_err(), "short");
        assert_ne!(a.seal("x", b"same").0, a.seal("x", b"same").0, "fresh nonce each time");
    }

    #[test]
    fn the_key_file_is_made_once_owner_only_and_checked_against_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key");
        let made = Sealer::unlock(&path, None).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = Sealer::unlock(&path, Some(&made.fingerprint())).unwrap();
        let sealed = made.seal("c", b"v");
        assert_eq!(
            again.open("c", &sealed).unwrap().expose(),
            b"v",
            "the same key read back"
        );
        assert!(matches!(
            Sealer::unlock(&path, Some("0000000000000000")),
            Err(SealError::WrongKey { .. })
        ));
        fs::remove_file(&path).unwrap();
        let missing = Sealer::unlock(&path, Some(&made.fingerprint())).unwrap_err();
        assert!(
            matches!(missing, SealError::Missing { .. }),
            "never a new key over sealed data"
        );
        assert!(missing.to_string().contains("restore"));
        fs::write(&path, "garbage").unwrap();
        assert!(matches!(Sealer::unlock(&path, None), Err(SealError::Unusable { .. })));
        assert_eq!(
            format!("{made:?}"),
            format!("Sealer({})", made.fingerprint()),
            "never the key"
        );
    }
}
