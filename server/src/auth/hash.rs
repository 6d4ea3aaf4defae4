//! Password hashes in deepstream's format, which `deepstream hash` prints and file
//! authentication checks.
//!
//! deepstream 7.0 stores a password as the base64 text of `PBKDF2-HMAC(password, salt)`
//! followed by the salt. The salt is the base64 text of 16 random bytes, and PBKDF2 takes the
//! bytes of that text as its salt, not the decoded bytes. Both parts use standard base64 with
//! padding, so the key part of a stored hash is `4 * ceil(keyLength / 3)` characters long and
//! the salt is the rest. The password enters PBKDF2 as UTF-8.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use pbkdf2::pbkdf2_hmac;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::config::{HashAlgorithm, HashSettings};

/// The number of random bytes in a new salt, as in deepstream.
const SALT_BYTES: usize = 16;

/// Returns the length in characters of the base64 text of a `key_length`-byte key.
pub fn encoded_key_length(key_length: usize) -> usize {
    4 * key_length.div_ceil(3)
}

/// Hashes `password` with a new random salt and returns the text to store in a users file.
pub fn hash_password(password: &str, settings: &HashSettings) -> String {
    let mut salt_bytes = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = BASE64.encode(salt_bytes);
    let mut stored = encoded_key(password, &salt, settings);
    stored.push_str(&salt);
    stored
}

/// Checks `password` against a `stored` hash. The comparison takes the same time wherever the
/// texts differ, and a `stored` text too short to hold a key still costs one derivation.
pub fn verify_password(password: &str, stored: &str, settings: &HashSettings) -> bool {
    let key_length = encoded_key_length(settings.key_length);
    let (expected, salt) = match (stored.get(..key_length), stored.get(key_length..)) {
        (Some(expected), Some(salt)) => (expected, salt),
        _ => ("", ""),
    };
    let derived = encoded_key(password, salt, settings);
    // Both sides have the length that the settings fix, unless `stored` is malformed.
    derived.len() == expected.len() && bool::from(derived.as_bytes().ct_eq(expected.as_bytes()))
}

/// Returns whether `stored` can be a hash made with `settings`: a base64 key of the right
/// length followed by a salt.
pub(crate) fn is_well_formed(stored: &str, settings: &HashSettings) -> bool {
    let key_length = encoded_key_length(settings.key_length);
    match stored.get(..key_length) {
        Some(key) => stored.len() > key_length && BASE64.decode(key).is_ok(),
        None => false,
    }
}

/// Derives the key of `password` and `salt` and returns its base64 text.
fn encoded_key(password: &str, salt: &str, settings: &HashSettings) -> String {
    let mut key = vec![0u8; settings.key_length];
    let (password, salt, rounds) = (password.as_bytes(), salt.as_bytes(), settings.iterations);
    match settings.algorithm {
        HashAlgorithm::Md5 => pbkdf2_hmac::<md5::Md5>(password, salt, rounds, &mut key),
        HashAlgorithm::Sha1 => pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, &mut key),
        HashAlgorithm::Sha224 => pbkdf2_hmac::<sha2::Sha224>(password, salt, rounds, &mut key),
        HashAlgorithm::Sha256 => pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, &mut key),
        HashAlgorithm::Sha384 => pbkdf2_hmac::<sha2::Sha384>(password, salt, rounds, &mut key),
        HashAlgorithm::Sha512 => pbkdf2_hmac::<sha2::Sha512>(password, salt, rounds, &mut key),
        HashAlgorithm::Sha512_224 => {
            pbkdf2_hmac::<sha2::Sha512_224>(password, salt, rounds, &mut key);
        }
        HashAlgorithm::Sha512_256 => {
            pbkdf2_hmac::<sha2::Sha512_256>(password, salt, rounds, &mut key);
        }
    }
    BASE64.encode(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use serde::Deserialize;

    use super::*;

    /// The fixture file: hashes made by the Node.js deepstream server 7.0.2.
    #[derive(Deserialize)]
    struct NodeHashes {
        vectors: Vec<NodeVector>,
    }

    /// One hash made by `createHash` of the Node.js deepstream server 7.0.2.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct NodeVector {
        algorithm: String,
        iterations: u32,
        key_length: usize,
        password: String,
        hash: String,
    }

    fn node_vectors() -> Vec<(HashSettings, NodeVector)> {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auth/node-hashes.json");
        let text = std::fs::read_to_string(&file).unwrap();
        let vectors = serde_json::from_str::<NodeHashes>(&text).unwrap().vectors;
        assert!(!vectors.is_empty(), "{} has no vectors", file.display());
        vectors
            .into_iter()
            .map(|vector| {
                let algorithm = HashAlgorithm::from_name(&vector.algorithm)
                    .unwrap_or_else(|| panic!("unknown digest {}", vector.algorithm));
                let settings = HashSettings {
                    algorithm,
                    iterations: vector.iterations,
                    key_length: vector.key_length,
                };
                (settings, vector)
            })
            .collect()
    }

    #[test]
    fn node_hashes_verify() {
        let vectors = node_vectors();
        for (settings, vector) in &vectors {
            assert!(
                verify_password(&vector.password, &vector.hash, settings),
                "{} hash of {:?} did not verify",
                vector.algorithm,
                vector.password
            );
        }
        let covered: Vec<HashAlgorithm> = vectors
            .iter()
            .map(|(settings, _)| settings.algorithm)
            .collect();
        for algorithm in HashAlgorithm::ALL {
            assert!(
                covered.contains(&algorithm),
                "no Node.js vector for {algorithm:?}"
            );
        }
    }

    #[test]
    fn node_hashes_reject_other_passwords() {
        for (settings, vector) in node_vectors() {
            let wrong = format!("{}!", vector.password);
            assert!(
                !verify_password(&wrong, &vector.hash, &settings),
                "{} hash accepted {wrong:?}",
                vector.algorithm
            );
        }
    }

    #[test]
    fn node_hash_rejects_other_settings() {
        let (settings, vector) = node_vectors().remove(0);
        let more_iterations = HashSettings {
            iterations: settings.iterations + 1,
            ..settings
        };
        assert!(!verify_password(
            &vector.password,
            &vector.hash,
            &more_iterations
        ));
        let other_digest = HashSettings {
            algorithm: if settings.algorithm == HashAlgorithm::Sha256 {
                HashAlgorithm::Sha512
            } else {
                HashAlgorithm::Sha256
            },
            ..settings
        };
        assert!(!verify_password(
            &vector.password,
            &vector.hash,
            &other_digest
        ));
    }

    #[test]
    fn new_hash_has_deepstream_layout() {
        let settings = HashSettings::DEEPSTREAM_DEFAULT;

        let stored = hash_password("password", &settings);

        let key_length = encoded_key_length(settings.key_length);
        assert_eq!(key_length, 44);
        let (key, salt) = stored.split_at(key_length);
        assert_eq!(BASE64.decode(key).unwrap().len(), 32);
        assert_eq!(BASE64.decode(salt).unwrap().len(), SALT_BYTES);
        assert!(is_well_formed(&stored, &settings));
        assert!(verify_password("password", &stored, &settings));
        assert!(!verify_password("Password", &stored, &settings));
    }

    #[test]
    fn new_hashes_use_new_salts() {
        let settings = HashSettings::DEEPSTREAM_DEFAULT;
        assert_ne!(
            hash_password("password", &settings),
            hash_password("password", &settings)
        );
    }

    #[test]
    fn malformed_stored_hashes_never_verify() {
        let settings = HashSettings::DEEPSTREAM_DEFAULT;
        let stored = hash_password("password", &settings);
        let key_only = &stored[..encoded_key_length(settings.key_length)];
        for malformed in ["", "password", key_only, "ä", &stored[1..]] {
            assert!(
                !verify_password("password", malformed, &settings),
                "{malformed:?} verified"
            );
            assert!(!is_well_formed(malformed, &settings), "{malformed:?}");
        }
    }

    #[test]
    fn encoded_key_length_rounds_up_to_whole_blocks() {
        assert_eq!(encoded_key_length(1), 4);
        assert_eq!(encoded_key_length(3), 4);
        assert_eq!(encoded_key_length(4), 8);
        assert_eq!(encoded_key_length(64), 88);
    }
}
