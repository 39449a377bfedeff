//! Content-defined chunking of file data (FastCDC, fastcdc crate's v2020 algorithm with a
//! per-repository gear seed).
//!
//! [`Chunker::cut_points_parallel`] splits one large input over threads and returns exactly the
//! cut points of [`Chunker::cut_points`]: a cut depends only on the bytes from the previous cut
//! on, so chains started at different places agree from their first common cut onwards.

use fastcdc::v2020::{FastCDC, Normalization};
use rayon::prelude::*;

use crate::format::config::ChunkerParams;

#[derive(Clone, Copy, Debug)]
pub struct Chunker {
    params: ChunkerParams,
    seed: u64,
}

/// Inputs at least this large are chunked in parallel.
pub const PARALLEL_THRESHOLD: usize = 32 << 20;

impl Chunker {
    pub fn new(params: ChunkerParams, seed: u64) -> Self {
        Chunker { params, seed }
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    fn cdc<'a>(&self, data: &'a [u8]) -> FastCDC<'a> {
        let level = match self.params.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        };
        FastCDC::with_level_and_seed(
            data,
            self.params.min_size,
            self.params.avg_size,
            self.params.max_size,
            level,
            self.seed,
        )
    }

    /// End offsets of the chunks of `data`, in order; the last equals `data.len()`.
    /// Empty input has no chunks.
    pub fn cut_points(&self, data: &[u8]) -> Vec<usize> {
        self.cdc(data).map(|c| c.offset + c.length).collect()
    }

    /// Same result as [`Chunker::cut_points`], computed over `segment`-sized pieces in parallel.
    pub fn cut_points_parallel(&self, data: &[u8], segment: usize) -> Vec<usize> {
        let segment = segment.max(self.params.max_size as usize * 2);
        if data.len() <= segment {
            return self.cut_points(data);
        }
        let cdc = self.cdc(data);
        let starts: Vec<usize> = (0..data.len()).step_by(segment).collect();
        // Candidate chains: from each segment start, cut until passing the segment's end.
        let chains: Vec<Vec<usize>> = starts
            .par_iter()
            .map(|&s| {
                let end = (s + segment).min(data.len());
                let mut out = Vec::new();
                let mut pos = s;
                while pos < end {
                    let (_, cut) = cdc.cut(pos, data.len() - pos);
                    out.push(cut);
                    pos = cut;
                }
                out
            })
            .collect();
        // Stitch: walk the true chain; inside segment k, step sequentially until a true cut is
        // one of segment k's candidates, then adopt the rest of that chain.
        let mut result = Vec::with_capacity(data.len() / self.params.avg_size as usize + 1);
        let mut pos = 0usize;
        for (k, chain) in chains.iter().enumerate() {
            let seg_end = (starts[k] + segment).min(data.len());
            if pos >= seg_end {
                continue;
            }
            if k == 0 {
                result.extend_from_slice(chain);
                pos = *chain.last().unwrap_or(&0);
                continue;
            }
            while pos < seg_end {
                if let Ok(i) = chain.binary_search(&pos) {
                    result.extend_from_slice(&chain[i + 1..]);
                    pos = *chain.last().unwrap();
                    break;
                }
                let (_, cut) = cdc.cut(pos, data.len() - pos);
                result.push(cut);
                pos = cut;
            }
        }
        result
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic incompressible test data (xorshift).
    pub(crate) fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Pins the cut points of the default parameters on a fixed input and seed: if this fails,
    /// new backups would no longer deduplicate against old ones. Never update it casually.
    #[test]
    fn cut_points_are_pinned() {
        let data = pseudo_random(24 << 20, 42);
        let c = Chunker::new(ChunkerParams::DEFAULT, 0x0123_4567_89ab_cdef);
        let cuts = c.cut_points(&data);
        let head: Vec<usize> = cuts.iter().take(8).copied().collect();
        assert_eq!(
            head, PINNED_HEAD,
            "cut points of the default chunker changed"
        );
        assert_eq!(cuts.len(), PINNED_COUNT);
        assert_eq!(*cuts.last().unwrap(), data.len());
    }

    const PINNED_HEAD: [usize; 8] = [
        893742, 1974101, 3274416, 5139024, 7376182, 7791308, 8892947, 11333357,
    ];
    const PINNED_COUNT: usize = 19;

    #[test]
    fn seed_changes_cut_points() {
        let data = pseudo_random(8 << 20, 7);
        let a = Chunker::new(ChunkerParams::DEFAULT, 1).cut_points(&data);
        let b = Chunker::new(ChunkerParams::DEFAULT, 2).cut_points(&data);
        assert_ne!(a, b);
    }

    #[test]
    fn empty_and_tiny() {
        let c = Chunker::new(ChunkerParams::DEFAULT, 1);
        assert!(c.cut_points(&[]).is_empty());
        assert_eq!(c.cut_points(&[1, 2, 3]), vec![3]);
    }

    fn small_params() -> ChunkerParams {
        ChunkerParams {
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
            normalization: 1,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn parallel_equals_sequential(len in 0usize..300_000, seed in any::<u64>(), dseed in any::<u64>(),
                                      segment in 8192usize..40_000, zeros in any::<bool>()) {
            let mut data = pseudo_random(len, dseed);
            if zeros && len > 100_000 {
                // long runs without cuts (max-size chunks) cross segment boundaries
                data[20_000..90_000].fill(0);
            }
            let c = Chunker::new(small_params(), seed.max(1));
            prop_assert_eq!(c.cut_points_parallel(&data, segment), c.cut_points(&data));
        }
    }

    #[test]
    fn parallel_equals_sequential_default_params() {
        let data = pseudo_random(70 << 20, 99);
        let c = Chunker::new(ChunkerParams::DEFAULT, 5);
        assert_eq!(c.cut_points_parallel(&data, 16 << 20), c.cut_points(&data));
    }
}
