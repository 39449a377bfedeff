//! The tar engine: GNU tar `--listed-incremental` archives written and read by rime itself.
//!
//! Freezer stores file backups as GNU tar incremental archives (with a snapshot file, "SNAR",
//! linking the levels), compressed with gzip/bzip2/xz and optionally encrypted with
//! `openssl enc -aes-256-cfb`. This module produces and consumes exactly those streams without
//! running `tar`, `gzip` or `openssl`, so that rime's tar backups stay restorable with plain GNU
//! tar and Freezer's backups are restorable by rime:
//!
//! - [`snar`]: the snapshot file (format version 2), parsed and written byte for byte;
//! - [`create()`]: an incremental archive of a directory tree at any level, plus the new SNAR;
//! - [`scan`]: the tree read ahead of the writer, on several threads, in the writer's order;
//! - [`apply()`]: extraction that honours dumpdir entries (files absent from a level are deleted);
//! - [`compress`]: gzip, bzip2, xz, zstd stream wrappers;
//! - [`openssl`]: `openssl enc -aes-256-cfb` compatible encryption with wrong-key detection;
//! - [`parallel`]: multi-core compression producing streams the standard tools read;
//! - [`stream`]: tar → compression → encryption assembled from a [`StreamFormat`];
//! - [`header`], [`read`], [`write`](mod@write): GNU tar blocks, a streaming reader and writer.

pub mod header;
pub mod read;
pub mod snar;
pub mod write;

pub use header::{Entry, EntryKind};
pub use read::TarReader;
pub use snar::{DumpEntry, Snar, SnarDir};
pub use write::TarWriter;
pub mod apply;
pub mod create;
mod holes;
mod remove;

pub use apply::{apply, ApplyOptions, ApplyStats};
pub use create::{create, create_from, CreateOptions, CreateOutcome, CreateStats};
pub mod scan;

pub use scan::Scan;
pub mod compress;
pub mod openssl;

pub use compress::{CompressWriter, Compression, DecompressReader};
pub use openssl::{DecryptReader, EncryptWriter, KdfDigest};
pub mod stream;

pub use stream::{open_reader, StreamFormat, StreamWriter};
pub mod parallel;

pub use parallel::ParallelCompressWriter;
