//! Random bytes for event uuids, drawn from the host in bulk: one `random_get` host call
//! per [`POOL_BYTES`] bytes (64 uuids) instead of one per event. The bytes are the host's
//! own randomness either way; the pool only changes how many crossings fetch them.

/// How many bytes one refill draws: 64 event uuids.
pub const POOL_BYTES: usize = 16 * 64;

/// Randomness fetched ahead and handed out 16 bytes at a time.
pub struct EntropyPool {
    bytes: [u8; POOL_BYTES],
    /// Bytes already handed out (or never filled): the next uuid starts here.
    used: usize,
}

impl Default for EntropyPool {
    fn default() -> Self {
        Self { bytes: [0; POOL_BYTES], used: POOL_BYTES }
    }
}

impl EntropyPool {
    /// The next 16 random bytes. `refill` fills the whole pool from the host and says
    /// whether it could; when it could not, nothing is handed out (and nothing is reused).
    pub fn take16(&mut self, refill: impl FnOnce(&mut [u8]) -> bool) -> Option<[u8; 16]> {
        if self.used + 16 > POOL_BYTES {
            if !refill(&mut self.bytes) {
                return None;
            }
            self.used = 0;
        }
        let mut taken = [0u8; 16];
        taken.copy_from_slice(self.bytes.get(self.used..self.used + 16)?);
        // Handed-out bytes are wiped so that no later reader of this memory can see a uuid's source.
        self.bytes.get_mut(self.used..self.used + 16)?.fill(0);
        self.used += 16;
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host whose refills never repeat a 4-byte word.
    fn counting_refill(calls: &mut u32) -> impl FnMut(&mut [u8]) -> bool + '_ {
        move |buffer: &mut [u8]| {
            *calls += 1;
            for (index, word) in buffer.chunks_mut(4).enumerate() {
                word.copy_from_slice(&(*calls * 100_000 + index as u32).to_le_bytes());
            }
            true
        }
    }

    #[test]
    fn one_refill_gives_sixty_four_distinct_ids_then_the_next_refill_follows() {
        let mut pool = EntropyPool::default();
        let mut calls = 0;
        let mut refill = counting_refill(&mut calls);
        let ids: Vec<[u8; 16]> = (0..65).map(|_| pool.take16(&mut refill).expect("the host gives bytes")).collect();
        drop(refill);
        assert_eq!(calls, 2, "64 ids per refill: the 65th needs a second one");
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "every id differs");
    }

    #[test]
    fn a_failed_refill_hands_out_nothing_and_is_retried_next_time() {
        let mut pool = EntropyPool::default();
        assert_eq!(pool.take16(|_| false), None, "no randomness, no id");
        let refilled = pool.take16(|bytes| {
            bytes.fill(9);
            true
        });
        assert_eq!(refilled, Some([9; 16]), "the next call refills again");
    }
}
