//! The keys and values a run writes. Keys are the run's prefix followed by a zero-padded
//! decimal index, so every key has exactly `key_bytes` bytes and byte order equals index
//! order: a Range from key `i` to key `i + n` returns exactly `n` pre-populated keys.

use rand::Rng;

use crate::config::WorkloadConfig;
use crate::error::BenchError;

/// The `key_count` keys a run addresses, all of length `key_bytes`.
#[derive(Debug, Clone)]
pub struct KeySpace {
    prefix: Vec<u8>,
    key_count: u64,
    index_digits: usize,
}

impl KeySpace {
    /// Builds the key space of a run, refusing a key size that cannot hold the prefix and
    /// the digits of every index (and of `key_count` itself, the end of the last range).
    pub fn new(prefix: &str, key_count: u64, key_bytes: usize) -> Result<Self, BenchError> {
        let digits_needed = decimal_digits(key_count);
        let key_bytes_min = prefix.len() + digits_needed;
        if key_bytes < key_bytes_min {
            return Err(BenchError::InvalidConfig {
                flag: "--key-size",
                reason: format!(
                    "{key_bytes} bytes cannot hold prefix `{prefix}` and {key_count} distinct indexes; \
                     raise --key-size to at least {key_bytes_min} or shorten --key-prefix"
                ),
            });
        }
        Ok(KeySpace {
            prefix: prefix.as_bytes().to_vec(),
            key_count,
            index_digits: key_bytes - prefix.len(),
        })
    }

    /// The key space a config describes.
    pub fn from_config(config: &WorkloadConfig) -> Result<Self, BenchError> {
        KeySpace::new(&config.key_prefix, config.key_count, config.key_bytes)
    }

    /// Distinct keys in the space.
    pub fn key_count(&self) -> u64 {
        self.key_count
    }

    /// The key at `index`; `index == key_count` is allowed as the exclusive end of a range.
    pub fn key(&self, index: u64) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + self.index_digits);
        key.extend_from_slice(&self.prefix);
        key.extend_from_slice(format!("{index:0width$}", width = self.index_digits).as_bytes());
        key
    }

    /// A key chosen uniformly at random.
    pub fn random_key(&self, rng: &mut impl Rng) -> Vec<u8> {
        self.key(rng.random_range(0..self.key_count))
    }
}

/// A value of `value_bytes` printable random bytes; each client writes its own, so the
/// hot loop does not spend its time generating randomness.
pub fn random_value(value_bytes: usize, rng: &mut impl Rng) -> Vec<u8> {
    (0..value_bytes)
        .map(|_| rng.random_range(b'a'..=b'z'))
        .collect()
}

/// The smallest key greater than every key that starts with `prefix`, as etcd's
/// `GetPrefixRangeEnd`: the `range_end` that makes a Range or Watch cover the prefix.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: etcd's convention for "to the end of the keyspace".
    vec![0]
}

fn decimal_digits(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_configured_length_and_sort_by_index() {
        let space = KeySpace::new("bench/", 1_000, 16).unwrap();
        let keys: Vec<Vec<u8>> = (0..=1_000).map(|index| space.key(index)).collect();
        assert!(keys.iter().all(|key| key.len() == 16));
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(space.key(42), b"bench/0000000042".to_vec());
    }

    #[test]
    fn key_size_too_small_for_the_count_is_refused() {
        assert!(KeySpace::new("bench/", 1_000, 10).is_ok());
        assert!(KeySpace::new("bench/", 10_000, 10).is_err());
    }

    #[test]
    fn prefix_range_end_covers_the_prefix_only() {
        assert_eq!(prefix_range_end(b"bench/"), b"bench0".to_vec());
        assert_eq!(prefix_range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn decimal_digits_counts_digits() {
        assert_eq!(decimal_digits(0), 1);
        assert_eq!(decimal_digits(9), 1);
        assert_eq!(decimal_digits(10), 2);
        assert_eq!(decimal_digits(10_000), 5);
    }
}
