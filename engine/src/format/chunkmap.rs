//! Chunk maps: the ordered content of a volume or stream snapshot.
//!
//! A volume of hundreds of GiB has millions of chunks, so its map is never one object: the
//! snapshot's `root` is a [`ChunkMap`] blob listing [`MapSegment`] blobs, each holding at most
//! [`SEGMENT_PARTS`] parts in order. Backup writes and restore reads one segment at a time,
//! so memory stays bounded whatever the volume size, and an unchanged stretch of a volume
//! encodes to the same segment bytes and is stored once. Both are tree-type blobs (they live
//! in tree packs with directory trees) encoded with postcard.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::tree::Part;
use crate::format::{from_postcard, to_postcard};
use crate::id::BlobId;

/// Most parts in one segment: 8192 chunks of 64 KiB cover 512 MiB in about 300 KiB of map.
pub const SEGMENT_PARTS: usize = 8192;

/// Magic at the start of a chunk map, so that a directory tree is never mistaken for one.
pub const MAP_MAGIC: [u8; 4] = *b"RMAP";
/// Magic at the start of a map segment.
pub const SEGMENT_MAGIC: [u8; 4] = *b"RSEG";

/// Reference to one segment: its blob and how many bytes of content it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub id: BlobId,
    pub len: u64,
}

/// The root of a volume or stream snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMap {
    pub magic: [u8; 4],
    /// Content size in bytes: the sum of the segments' lengths.
    pub size: u64,
    pub segments: Vec<SegmentRef>,
}

/// A run of consecutive parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSegment {
    pub magic: [u8; 4],
    pub parts: Vec<Part>,
}

impl ChunkMap {
    pub fn new(segments: Vec<SegmentRef>) -> ChunkMap {
        ChunkMap {
            magic: MAP_MAGIC,
            size: segments.iter().map(|s| s.len).sum(),
            segments,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        to_postcard(self)
    }

    /// Decode and validate: magic, and segment lengths adding up to `size`.
    pub fn decode(bytes: &[u8]) -> Result<ChunkMap> {
        let m: ChunkMap = from_postcard("chunk map", bytes)?;
        if m.magic != MAP_MAGIC {
            return Err(Error::corrupt("chunk map: bad magic"));
        }
        let sum = m
            .segments
            .iter()
            .try_fold(0u64, |a, s| a.checked_add(s.len));
        if sum != Some(m.size) {
            return Err(Error::corrupt(
                "chunk map: segment lengths do not add up to the size",
            ));
        }
        Ok(m)
    }
}

impl MapSegment {
    pub fn new(parts: Vec<Part>) -> MapSegment {
        MapSegment {
            magic: SEGMENT_MAGIC,
            parts,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        to_postcard(self)
    }

    /// Decode and validate against the length its reference promises.
    pub fn decode(bytes: &[u8], expected_len: u64) -> Result<MapSegment> {
        let s: MapSegment = from_postcard("map segment", bytes)?;
        if s.magic != SEGMENT_MAGIC {
            return Err(Error::corrupt("map segment: bad magic"));
        }
        if s.parts.len() > SEGMENT_PARTS {
            return Err(Error::corrupt(format!(
                "map segment: {} parts, at most {SEGMENT_PARTS} allowed",
                s.parts.len()
            )));
        }
        let sum = s.parts.iter().try_fold(0u64, |a, p| a.checked_add(p.len()));
        if sum != Some(expected_len) {
            return Err(Error::corrupt(
                "map segment: parts do not add up to the length its map gives",
            ));
        }
        Ok(s)
    }

    pub fn len(&self) -> u64 {
        self.parts.iter().map(Part::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let parts = vec![
            Part::Data {
                id: BlobId([7; 32]),
                len: 65536,
            },
            Part::Hole { len: 1 << 20 },
        ];
        let seg = MapSegment::new(parts);
        let bytes = seg.encode();
        assert_eq!(MapSegment::decode(&bytes, seg.len()).unwrap(), seg);
        assert!(MapSegment::decode(&bytes, seg.len() + 1).is_err());
        let map = ChunkMap::new(vec![SegmentRef {
            id: BlobId([9; 32]),
            len: seg.len(),
        }]);
        let mb = map.encode();
        assert_eq!(ChunkMap::decode(&mb).unwrap(), map);
        // a segment is not a map, and neither is accepted as the other
        assert!(ChunkMap::decode(&bytes).is_err());
        assert!(MapSegment::decode(&mb, 0).is_err());
        let mut bad = map.clone();
        bad.size += 1;
        assert!(ChunkMap::decode(&bad.encode()).is_err());
    }
}
