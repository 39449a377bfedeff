//! Opening a storage with the generic wrappers stacked around it, as a run needs it.
//!
//! Order, outermost first: dry run (nothing below it is ever asked to write), retries (a backoff
//! pause holds no connection slot), bandwidth (each attempt's bytes count), concurrency limit,
//! then the storage itself.

use std::sync::Arc;

use crate::error::Result;
use crate::storage::bandwidth::{BandwidthLimit, TokenBucket};
use crate::storage::dry_run::DryRunStorage;
use crate::storage::limit::ConcurrencyLimit;
use crate::storage::retry::{RetryPolicy, RetryStorage};
use crate::storage::sftp::{SftpOptions, SftpStorage, DEFAULT_CONNECTIONS};
use crate::storage::{open_url, Storage};

/// Options for [`open_layered`]; the defaults are what a plain run uses.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub sftp: SftpOptions,
    /// Concurrent operations (and SFTP connections); default per storage kind.
    pub connections: Option<usize>,
    /// Bytes per second for uploads and downloads of this storage alone, shared by its threads.
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
    /// Buckets shared with the run's other storages (`--limit-upload` holds for all of them
    /// together); they apply in addition to this storage's own limits.
    pub shared_upload: Option<Arc<TokenBucket>>,
    pub shared_download: Option<Arc<TokenBucket>>,
    /// Retries for network storages (local directories are not retried: their errors last).
    pub retry: Option<RetryPolicy>,
    pub dry_run: bool,
    /// Credentials for a `swift://` URL (a config section's); `None`: from the environment.
    pub swift: Option<crate::storage::SwiftCredentials>,
}

pub struct Opened {
    pub storage: Arc<dyn Storage>,
    /// Set in a dry run: what the run would have written and removed.
    pub dry_run: Option<Arc<DryRunStorage>>,
}

fn is_network(url: &str) -> bool {
    url.contains("://")
}

/// The concurrency a storage kind gets when the user does not say (`None`: unlimited).
pub fn default_connections(url: &str) -> Option<usize> {
    if url.starts_with("sftp://") {
        Some(DEFAULT_CONNECTIONS)
    } else {
        None
    }
}

/// One direction's buckets: a new one for the storage's own limit, and the shared one.
fn buckets(own: Option<u64>, shared: &Option<Arc<TokenBucket>>) -> Vec<Arc<TokenBucket>> {
    own.map(|r| Arc::new(TokenBucket::new(r)))
        .into_iter()
        .chain(shared.clone())
        .collect()
}

pub fn open_layered(url: &str, opts: &OpenOptions) -> Result<Opened> {
    let connections = opts.connections.or_else(|| default_connections(url));
    let mut s: Arc<dyn Storage> = if url.starts_with("sftp://") {
        let mut o = opts.sftp.clone();
        o.connections = o.connections.or(connections);
        Arc::new(SftpStorage::open(url, &o)?)
    } else if let (true, Some(creds)) = (url.starts_with("swift://"), &opts.swift) {
        Arc::new(crate::storage::SwiftStorage::open(url, creds.clone())?)
    } else {
        open_url(url)?
    };
    if let Some(n) = connections {
        s = Arc::new(ConcurrencyLimit::new(s, n));
    }
    let up = buckets(opts.limit_upload, &opts.shared_upload);
    let down = buckets(opts.limit_download, &opts.shared_download);
    if !up.is_empty() || !down.is_empty() {
        s = Arc::new(BandwidthLimit::with_buckets(s, up, down));
    }
    if is_network(url) {
        s = Arc::new(RetryStorage::new(s, opts.retry.clone().unwrap_or_default()));
    }
    let mut dry = None;
    if opts.dry_run {
        let d = Arc::new(DryRunStorage::new(s));
        s = d.clone();
        dry = Some(d);
    }
    Ok(Opened {
        storage: s,
        dry_run: dry,
    })
}
