//! Password hashing, done by the member that receives UserAdd or UserChangePassword
//! before it proposes anything, so the log and the store only ever hold the hash.
//!
//! argon2id with the crate's default cost (19 MiB, two passes) and a random 16-byte salt,
//! in PHC string form, which records its own parameters: a hash made with other
//! parameters later still verifies. Both directions cost tens of milliseconds of CPU on
//! purpose; callers run them on the blocking pool.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Salt bytes per hash.
const SALT_BYTES: usize = 16;

/// The PHC string of `password` with a fresh salt.
pub fn hash(password: &str) -> Result<String, String> {
    let salt_bytes: [u8; SALT_BYTES] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| format!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// Whether `password` is the one `phc` was made from. A hash that does not parse
/// matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_hides_it() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify("correct horse", &phc));
        assert!(!verify("correct horse!", &phc));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_their_salt() {
        assert_ne!(hash("pw").unwrap(), hash("pw").unwrap());
    }
}
