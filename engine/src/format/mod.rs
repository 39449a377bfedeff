//! Pure encoding and decoding of every stored object. No I/O here; every decoder takes
//! untrusted bytes and returns an error, never panics (fuzzed in `fuzz/`).
//!
//! Binary layouts are explicit little-endian (packs, index files, object framing); the small
//! structured objects (config body, key files, snapshots, trees) use postcard 1.x, whose wire
//! format is written down and stable. `format-spec/SPEC.md` describes every byte.

pub mod blob;
pub mod chunkmap;
pub mod config;
pub mod index;
pub mod keyfile;
pub mod object;
pub mod pack;
pub mod snapshot;
pub mod tree;

mod reader;

pub use blob::{BlobFlags, BlobType};
pub(crate) use reader::Reader;

/// The repository format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;

/// The error for an item written in a newer version of its format than this build reads:
/// `what` names the item ("index", "key file"), as the item's other errors do.
pub(crate) fn newer_version(what: &str, version: u8) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::UnsupportedVersion,
        format!("{what} version {version} is newer than this rime understands"),
    )
}

/// Checks the version byte of an item that has exactly one version: a higher one is from a
/// newer rime ([`newer_version`]), a lower one is damage.
pub(crate) fn check_version(what: &str, version: u8, current: u8) -> crate::Result<()> {
    if version > current {
        return Err(newer_version(what, version));
    }
    if version != current {
        return Err(crate::Error::corrupt(format!(
            "{what}: invalid version {version}"
        )));
    }
    Ok(())
}

/// Encode with postcard (infallible for our types: no maps with non-string keys, no unsized data).
pub(crate) fn to_postcard<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("postcard encoding into a Vec cannot fail for rime's types")
}

pub(crate) fn from_postcard<'a, T: serde::Deserialize<'a>>(
    what: &str,
    bytes: &'a [u8],
) -> crate::Result<T> {
    let (v, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| crate::Error::corrupt(format!("{what}: cannot decode: {e}")))?;
    if !rest.is_empty() {
        return Err(crate::Error::corrupt(format!(
            "{what}: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(v)
}
