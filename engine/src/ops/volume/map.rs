//! Writing and reading chunk maps one segment at a time.

use crate::error::{Error, ErrorKind, Result};
use crate::format::chunkmap::{ChunkMap, MapSegment, SegmentRef, SEGMENT_PARTS};
use crate::format::tree::Part;
use crate::format::BlobType;
use crate::id::BlobId;
use crate::ops::blob_saver::BlobSaver;
use crate::repo::index::MasterIndex;
use crate::repo::Repository;

/// Collects parts in order and stores a segment blob every [`SEGMENT_PARTS`] parts.
#[derive(Default)]
pub(crate) struct MapWriter {
    parts: Vec<Part>,
    segments: Vec<SegmentRef>,
}

impl MapWriter {
    /// Append a part; adjacent holes merge.
    pub fn push(&mut self, saver: &BlobSaver<'_>, part: Part) -> Result<()> {
        if part.is_empty() {
            return Ok(());
        }
        if let (Some(Part::Hole { len }), Part::Hole { len: more }) = (self.parts.last_mut(), part)
        {
            *len += more;
            return Ok(());
        }
        if self.parts.len() == SEGMENT_PARTS {
            self.flush(saver)?;
        }
        self.parts.push(part);
        Ok(())
    }

    fn flush(&mut self, saver: &BlobSaver<'_>) -> Result<()> {
        if self.parts.is_empty() {
            return Ok(());
        }
        let seg = MapSegment::new(std::mem::take(&mut self.parts));
        let id = saver.save(BlobType::Tree, &seg.encode())?;
        self.segments.push(SegmentRef { id, len: seg.len() });
        self.parts = Vec::with_capacity(SEGMENT_PARTS);
        Ok(())
    }

    /// Store the last segment and the map; returns the map's blob id and the content size.
    pub fn finish(mut self, saver: &BlobSaver<'_>) -> Result<(BlobId, u64)> {
        self.flush(saver)?;
        let map = ChunkMap::new(self.segments);
        let id = saver.save(BlobType::Tree, &map.encode())?;
        Ok((id, map.size))
    }
}

fn read_tree_blob(
    repo: &Repository,
    index: &MasterIndex,
    id: &BlobId,
    what: &str,
) -> Result<Vec<u8>> {
    let (pack, e) = index.lookup(id).ok_or_else(|| {
        Error::new(
            ErrorKind::MissingObject,
            format!("{what} {id} is not in the index{}", index.missing_hint()),
        )
    })?;
    if e.ty != BlobType::Tree {
        return Err(Error::corrupt(format!(
            "{what} {id} is indexed as data, expected a tree blob"
        )));
    }
    repo.read_blob(&pack, &e)
}

/// Load a volume or stream snapshot's chunk map.
pub fn load_map(repo: &Repository, index: &MasterIndex, root: &BlobId) -> Result<ChunkMap> {
    let bytes = read_tree_blob(repo, index, root, "chunk map")?;
    ChunkMap::decode(&bytes).map_err(|e| e.within(format!("chunk map {}", root.short())))
}

/// Load one segment of a chunk map.
pub fn load_segment(
    repo: &Repository,
    index: &MasterIndex,
    seg: &SegmentRef,
) -> Result<MapSegment> {
    let bytes = read_tree_blob(repo, index, &seg.id, "map segment")?;
    MapSegment::decode(&bytes, seg.len)
        .map_err(|e| e.within(format!("map segment {}", seg.id.short())))
}

/// Every segment with its content offset, in order.
pub fn segment_offsets(map: &ChunkMap) -> impl Iterator<Item = (u64, &SegmentRef)> {
    map.segments.iter().scan(0u64, |off, s| {
        let here = *off;
        *off += s.len;
        Some((here, s))
    })
}
