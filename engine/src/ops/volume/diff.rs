//! Differences between two volume (or stream) snapshots: the byte ranges whose content differs.

use crate::error::{Error, Result};
use crate::format::chunkmap::{ChunkMap, SegmentRef};
use crate::format::snapshot::Snapshot;
use crate::format::tree::Part;
use crate::ops::volume::map::{load_map, load_segment};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeDiff {
    pub size_a: u64,
    pub size_b: u64,
    /// Changed ranges of B as (offset, length), merged and in order; a size change counts as a
    /// changed tail.
    pub ranges: Vec<(u64, u64)>,
    pub changed_bytes: u64,
}

/// Parts of a chunk map with their offsets, loading one segment at a time. Whole segments that
/// both maps share at the same offset are skipped without being loaded.
struct Cursor<'a> {
    repo: &'a Repository,
    index: &'a MasterIndex,
    map: &'a ChunkMap,
    next_seg: usize,
    seg_start: u64,
    parts: Vec<Part>,
    pos: usize,
    /// Offset of `parts[pos]`.
    off: u64,
}

impl<'a> Cursor<'a> {
    fn new(repo: &'a Repository, index: &'a MasterIndex, map: &'a ChunkMap) -> Self {
        Cursor {
            repo,
            index,
            map,
            next_seg: 0,
            seg_start: 0,
            parts: vec![],
            pos: 0,
            off: 0,
        }
    }

    /// The segment about to be loaded, if the cursor sits exactly at its start.
    fn at_segment(&self) -> Option<(u64, &'a SegmentRef)> {
        (self.pos == self.parts.len())
            .then(|| self.map.segments.get(self.next_seg).map(|s| (self.off, s)))
            .flatten()
    }

    fn skip_segment(&mut self) {
        let s = &self.map.segments[self.next_seg];
        self.next_seg += 1;
        self.off += s.len;
        self.seg_start = self.off;
    }

    /// Current part with its offset, loading the next segment when needed.
    fn current(&mut self) -> Result<Option<(u64, Part)>> {
        while self.pos == self.parts.len() {
            let Some(s) = self.map.segments.get(self.next_seg) else {
                return Ok(None);
            };
            self.parts = load_segment(self.repo, self.index, s)?.parts;
            self.pos = 0;
            self.next_seg += 1;
            self.seg_start = self.off;
        }
        Ok(Some((self.off, self.parts[self.pos])))
    }

    fn advance(&mut self) {
        self.off += self.parts[self.pos].len();
        self.pos += 1;
    }
}

pub fn diff(repo: &Repository, a: &Snapshot, b: &Snapshot) -> Result<VolumeDiff> {
    if !a.source.has_chunk_map() || !b.source.has_chunk_map() {
        return Err(Error::invalid(
            "diff compares two volume or stream snapshots",
        ));
    }
    let index = MasterIndex::load(repo)?;
    let ma = load_map(repo, &index, &a.root)?;
    let mb = load_map(repo, &index, &b.root)?;
    let mut ca = Cursor::new(repo, &index, &ma);
    let mut cb = Cursor::new(repo, &index, &mb);
    let mut d = VolumeDiff {
        size_a: ma.size,
        size_b: mb.size,
        ..Default::default()
    };
    let changed = |off: u64, len: u64, d: &mut VolumeDiff| {
        if len == 0 {
            return;
        }
        d.changed_bytes += len;
        match d.ranges.last_mut() {
            Some((o, l)) if *o + *l == off => *l += len,
            _ => d.ranges.push((off, len)),
        }
    };
    loop {
        if let (Some((oa, sa)), Some((ob, sb))) = (ca.at_segment(), cb.at_segment()) {
            if oa == ob && sa == sb {
                ca.skip_segment();
                cb.skip_segment();
                continue;
            }
        }
        let (Some((oa, pa)), Some((ob, pb))) = (ca.current()?, cb.current()?) else {
            break;
        };
        let (ea, eb) = (oa + pa.len(), ob + pb.len());
        let lo = oa.max(ob);
        let hi = ea.min(eb);
        let same = match (pa, pb) {
            (Part::Hole { .. }, Part::Hole { .. }) => true,
            (Part::Data { id: x, .. }, Part::Data { id: y, .. }) => x == y && oa == ob,
            _ => false,
        };
        if !same {
            changed(lo, hi - lo, &mut d);
        }
        if ea <= eb {
            ca.advance();
        }
        if eb <= ea {
            cb.advance();
        }
    }
    if mb.size > ma.size {
        changed(ma.size, mb.size - ma.size, &mut d);
    }
    Ok(d)
}
