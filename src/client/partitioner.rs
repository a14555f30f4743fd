//! Choosing a partition for a record: Kafka's murmur2 hash for keyed records, KIP-480's
//! sticky partitioning for records without a key, and the `Partitioner` hook for custom
//! strategies. This module owns the choice only; the accumulator decides when a batch is
//! new (and tells the partitioner through `on_new_batch`), the metadata cache supplies the
//! partition counts. Randomness comes from the caller's RNG, never from the OS.

use rand::RngCore;
use std::collections::BTreeMap;

/// Kafka's `Utils.murmur2` seed.
const MURMUR2_SEED: u32 = 0x9747_b28c;
/// MurmurHash2's mixing constants `m` and `r`, as in Kafka's `Utils.murmur2`.
const MURMUR2_M: u32 = 0x5bd1_e995;
const MURMUR2_R: u32 = 24;

/// Kafka's `Utils.murmur2`: MurmurHash2 (32-bit, little-endian words) with seed
/// 0x9747b28c, returned as Java's signed int. Hand-written (twenty lines) rather than a
/// crate: the client may not add dependencies, and the Java client's own test vectors pin
/// it (see the tests).
pub fn murmur2(data: &[u8]) -> i32 {
    let length = data.len();
    let mut h: u32 = MURMUR2_SEED ^ (length as u32);
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes(word.try_into().expect("chunks_exact yields 4 bytes"));
        k = k.wrapping_mul(MURMUR2_M);
        k ^= k >> MURMUR2_R;
        k = k.wrapping_mul(MURMUR2_M);
        h = h.wrapping_mul(MURMUR2_M);
        h ^= k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        // Java's switch falls through from case 3 to case 1.
        if tail.len() == 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(MURMUR2_M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR2_M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on MIN).
pub fn to_positive(n: i32) -> u32 {
    (n & 0x7fff_ffff) as u32
}

/// The partition Kafka's default partitioner picks for a keyed record.
pub fn partition_for_key(key: &[u8], num_partitions: u32) -> u32 {
    assert!(num_partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % num_partitions
}

/// The custom hook, as Kafka's `org.apache.kafka.clients.producer.Partitioner`.
///
/// `available` lists the partitions that currently have a known leader (sorted); it may
/// be empty. The result must be `< num_partitions`.
pub trait Partitioner {
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        num_partitions: u32,
        available: &[u32],
        rng: &mut dyn RngCore,
    ) -> u32;

    /// KIP-480's `onNewBatch`: the record chosen for `previous` would open a new batch.
    /// Returns true when the partitioner changed its mind and `partition` must be asked
    /// again (the sticky partitioner moves on); the default keeps the choice.
    fn on_new_batch(
        &mut self,
        _topic: &str,
        _previous: u32,
        _num_partitions: u32,
        _available: &[u32],
        _rng: &mut dyn RngCore,
    ) -> bool {
        false
    }
}

/// Kafka's DefaultPartitioner since 2.4: murmur2 of the key, or the sticky partition of
/// the topic for records without a key (KIP-480).
#[derive(Debug, Default)]
pub struct DefaultPartitioner {
    /// The sticky partition per topic (Kafka's StickyPartitionCache).
    sticky: BTreeMap<String, u32>,
}

impl DefaultPartitioner {
    pub fn new() -> Self {
        DefaultPartitioner::default()
    }

    /// StickyPartitionCache.nextPartition: a random available partition other than
    /// `previous` when there is a choice.
    fn next_sticky(
        &mut self,
        topic: &str,
        previous: Option<u32>,
        num_partitions: u32,
        available: &[u32],
        rng: &mut dyn RngCore,
    ) -> u32 {
        let choice = match available.len() {
            0 => rng.next_u32() % num_partitions,
            1 => available[0],
            n => {
                // Pick among the others directly: a bounded draw, no rejection loop.
                let candidates: Vec<u32> =
                    available.iter().copied().filter(|&p| Some(p) != previous).collect();
                let pool = if candidates.is_empty() { available } else { &candidates[..] };
                debug_assert!(pool.len() <= n);
                pool[(rng.next_u32() as usize) % pool.len()]
            }
        };
        assert!(choice < num_partitions, "sticky partition {choice} >= {num_partitions}");
        self.sticky.insert(topic.to_string(), choice);
        choice
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        num_partitions: u32,
        available: &[u32],
        rng: &mut dyn RngCore,
    ) -> u32 {
        if let Some(key) = key {
            return partition_for_key(key, num_partitions);
        }
        match self.sticky.get(topic) {
            Some(&p) if p < num_partitions => p,
            _ => self.next_sticky(topic, None, num_partitions, available, rng),
        }
    }

    fn on_new_batch(
        &mut self,
        topic: &str,
        previous: u32,
        num_partitions: u32,
        available: &[u32],
        rng: &mut dyn RngCore,
    ) -> bool {
        // Only move if the batch that filled up was on the sticky partition; a keyed
        // record opening a batch elsewhere must not move it (as in Kafka).
        if self.sticky.get(topic) == Some(&previous) {
            self.next_sticky(topic, Some(previous), num_partitions, available, rng);
            return true;
        }
        false
    }
}

/// Kafka's RoundRobinPartitioner: every record to the next partition in turn (among the
/// available ones when any), keys ignored.
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    counters: BTreeMap<String, u64>,
}

impl RoundRobinPartitioner {
    pub fn new() -> Self {
        RoundRobinPartitioner::default()
    }
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(
        &mut self,
        topic: &str,
        _key: Option<&[u8]>,
        num_partitions: u32,
        available: &[u32],
        _rng: &mut dyn RngCore,
    ) -> u32 {
        assert!(num_partitions > 0, "a topic has at least one partition");
        let counter = self.counters.entry(topic.to_string()).or_insert(0);
        let turn = *counter;
        *counter = counter.wrapping_add(1);
        if available.is_empty() {
            (turn % u64::from(num_partitions)) as u32
        } else {
            available[(turn % available.len() as u64) as usize]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
    /// `testMurmur2` (checked at commit f55581dc73953c3509a4702433aeeeddc2970779).
    #[test]
    fn murmur2_matches_kafka_utils_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107), // Kafka writes it as new byte[] {'a', 'b', 'c'}
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input), expected, "murmur2({:?})", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn to_positive_clears_only_the_sign_bit() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn sticky_partition_stays_until_a_new_batch() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut partitioner = DefaultPartitioner::new();
        let available = [0, 1, 2, 3];
        let first = partitioner.partition("t", None, 4, &available, &mut rng);
        for _ in 0..20 {
            assert_eq!(partitioner.partition("t", None, 4, &available, &mut rng), first);
        }
        assert!(partitioner.on_new_batch("t", first, 4, &available, &mut rng));
        let second = partitioner.partition("t", None, 4, &available, &mut rng);
        assert_ne!(second, first, "a new batch moves to another available partition");
        // A new batch on a partition that is not the sticky one keeps the sticky choice.
        let other = (second + 1) % 4;
        assert!(!partitioner.on_new_batch("t", other, 4, &available, &mut rng));
        assert_eq!(partitioner.partition("t", None, 4, &available, &mut rng), second);
    }

    #[test]
    fn sticky_partition_prefers_available_partitions() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut partitioner = DefaultPartitioner::new();
        for _ in 0..50 {
            let p = partitioner.partition("t", None, 8, &[5], &mut rng);
            assert_eq!(p, 5);
            partitioner.on_new_batch("t", p, 8, &[5], &mut rng);
        }
    }

    #[test]
    fn round_robin_cycles_over_available_partitions() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut partitioner = RoundRobinPartitioner::new();
        let picks: Vec<u32> = (0..6)
            .map(|_| partitioner.partition("t", Some(b"k"), 5, &[1, 3, 4], &mut rng))
            .collect();
        assert_eq!(picks, vec![1, 3, 4, 1, 3, 4]);
    }

    proptest! {
        #[test]
        fn partition_is_in_range_and_keyed_is_stable(
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            num_partitions in 1u32..64,
            available_mask in any::<u64>(),
            seed in any::<u64>(),
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let available: Vec<u32> =
                (0..num_partitions).filter(|p| available_mask & (1 << p) != 0).collect();
            let mut default = DefaultPartitioner::new();
            let mut round_robin = RoundRobinPartitioner::new();
            for _ in 0..4 {
                let a = default.partition("t", key.as_deref(), num_partitions, &available, &mut rng);
                prop_assert!(a < num_partitions);
                if let Some(key) = &key {
                    prop_assert_eq!(a, partition_for_key(key, num_partitions));
                    let b = default.partition("u", Some(key), num_partitions, &[], &mut rng);
                    prop_assert_eq!(a, b, "same key, same partition");
                }
                default.on_new_batch("t", a, num_partitions, &available, &mut rng);
                let r = round_robin.partition("t", key.as_deref(), num_partitions, &available, &mut rng);
                prop_assert!(r < num_partitions);
            }
        }
    }
}
