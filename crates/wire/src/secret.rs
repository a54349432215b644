//! The per-generation secret every request head carries: drawn from the kernel's random
//! number generator (getrandom(2)), never left predictable.

use crate::SECRET_LEN;

/// The system's random number generator could not fill the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot draw the daemon processes' secret from the system's random number generator (getrandom): {0}; refusing to start with a predictable secret"
)]
pub struct SecretError(String);

/// A new secret from getrandom(2).
pub fn new_secret() -> Result<[u8; SECRET_LEN], SecretError> {
    secret_from(getrandom::fill)
}

/// A new secret filled by `fill` (getrandom in [`new_secret`]); a failure is an error,
/// never a secret of zeros.
pub fn secret_from<E: std::fmt::Display>(
    fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
) -> Result<[u8; SECRET_LEN], SecretError> {
    let mut secret = [0u8; SECRET_LEN];
    fill(&mut secret).map_err(|e| SecretError(e.to_string()))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_generator_is_an_error_not_zeros() {
        let failed = secret_from(|_: &mut [u8]| Err(getrandom::Error::UNSUPPORTED));
        let text = failed
            .expect_err("a failed fill must not give a secret")
            .to_string();
        assert!(
            text.contains("getrandom")
                && text.contains(&getrandom::Error::UNSUPPORTED.to_string())
                && text.contains("refusing to start"),
            "{text}"
        );
        let partial = secret_from(|buf: &mut [u8]| {
            buf[..4].copy_from_slice(&[1, 2, 3, 4]);
            Err("interrupted")
        });
        assert_eq!(
            partial,
            Err(SecretError("interrupted".to_owned())),
            "a fill that failed half-way is a failure too"
        );
    }

    #[test]
    fn the_filled_bytes_are_the_secret() {
        let secret = secret_from(|buf: &mut [u8]| {
            buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
        assert_eq!(secret[0], 0);
        assert_eq!(secret[SECRET_LEN - 1], (SECRET_LEN - 1) as u8);
    }

    #[test]
    fn getrandom_gives_distinct_secrets() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        assert_ne!(a, [0; SECRET_LEN]);
    }
}
