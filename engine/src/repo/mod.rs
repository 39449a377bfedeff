//! An open repository: storage, keys and config. Loading the index is a separate step
//! ([`index::MasterIndex::load`]) because some operations (listing snapshots) never need it.

pub mod headers;
pub mod index;
pub mod keys;
pub mod lock;
pub mod packer;
pub mod pending;

use std::sync::Arc;

use crate::crypto::{KdfParams, Keys, MasterSecret};
use crate::error::{Error, ErrorKind, Result};
use crate::format::config::{self, ChunkerParams, Config, ConfigBody, Encryption};
use crate::format::object::{open_object, seal_object, ObjectKind};
use crate::format::pack::PackEntry;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Tree;
use crate::format::{blob, BlobType};
use crate::id::{BlobId, KeyId, RepoId, SnapshotId};
use crate::storage::{FileKind, Storage};

pub struct InitOptions {
    pub encryption: Encryption,
    pub kdf: KdfParams,
    pub chunker: ChunkerParams,
    pub data_pack_size: u32,
    pub tree_pack_size: u32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            encryption: Encryption::Aes256Gcm,
            kdf: KdfParams::DEFAULT,
            chunker: ChunkerParams::DEFAULT,
            data_pack_size: 32 << 20,
            tree_pack_size: 8 << 20,
        }
    }
}

#[derive(Clone)]
pub struct Repository {
    storage: Arc<dyn Storage>,
    keys: Keys,
    config: Config,
    key_id: KeyId,
    master: MasterSecret,
    /// Damage found on one copy of a multi-storage repository and repaired from another
    /// during this process's reads (see [`Repository::recovered`]).
    recovered: Arc<parking_lot::Mutex<Vec<String>>>,
    /// See [`Repository::warnings`].
    warnings: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Repository {
    /// Create a new repository and its first key file.
    pub fn init(
        storage: Arc<dyn Storage>,
        password: &[u8],
        opts: &InitOptions,
    ) -> Result<Repository> {
        if !storage.list(FileKind::Config)?.is_empty() {
            return Err(Error::new(
                ErrorKind::RepositoryExists,
                format!("a repository already exists at {}", storage.location()),
            ));
        }
        storage.create()?;
        let master = MasterSecret::random();
        let encrypted = opts.encryption == Encryption::Aes256Gcm;
        let keys = Keys::derive(&master, encrypted);
        let body = ConfigBody {
            repo_id: RepoId::random(),
            encryption: opts.encryption,
            chunker: opts.chunker,
            data_pack_size: opts.data_pack_size,
            tree_pack_size: opts.tree_pack_size,
            created: now_secs(),
        };
        let kdf = encrypted.then_some(opts.kdf);
        let key_id = keys::write_key_file(storage.as_ref(), &body.repo_id, &master, password, kdf)?;
        // The config is written last: until it exists, there is no repository.
        let bytes = config::encode(&body, |b| keys.config_mac(b));
        if let Err(e) = storage.write(FileKind::Config, "config", &bytes) {
            if e.kind() == ErrorKind::RepositoryExists {
                // Another init got there first (the config is create-only): our key file
                // belongs to no repository, so it goes.
                let _ = storage.remove(FileKind::Key, &key_id.to_hex());
                storage.flush();
            }
            return Err(e);
        }
        let config = config::decode(&bytes)?;
        Ok(Repository::unlocked(storage, keys, config, key_id, master))
    }

    /// A repository whose key is unlocked (by `init` or `open`), with nothing yet recovered
    /// or warned about in this process.
    fn unlocked(
        storage: Arc<dyn Storage>,
        keys: Keys,
        config: Config,
        key_id: KeyId,
        master: MasterSecret,
    ) -> Repository {
        Repository {
            recovered: Default::default(),
            warnings: Default::default(),
            storage,
            keys,
            config,
            key_id,
            master,
        }
    }

    /// Open an existing repository with a password (tried against every key file).
    ///
    /// `None` means the caller expects an unencrypted repository. The expectation is checked
    /// against the config, so an attacker who can write the storage cannot silently turn an
    /// encrypted repository into an unencrypted one (or substitute a password-less key).
    pub fn open(storage: Arc<dyn Storage>, password: Option<&[u8]>) -> Result<Repository> {
        let bytes = match storage.read(FileKind::Config, "config") {
            Ok(b) => b,
            Err(e) if matches!(e.kind(), ErrorKind::MissingObject | ErrorKind::NotFound) => {
                return Err(Error::new(
                    ErrorKind::RepositoryNotFound,
                    format!(
                        "no repository at {} (no config file; run `rime init` first)",
                        storage.location()
                    ),
                ))
            }
            Err(e) => return Err(e),
        };
        let config = config::decode(&bytes).map_err(|e| e.within(storage.location()))?;
        let encrypted = config.body.encryption == Encryption::Aes256Gcm;
        let password = match (encrypted, password) {
            (true, Some(p)) => p,
            (false, None) => &[][..],
            (true, None) => {
                return Err(Error::invalid(format!("repository at {} is encrypted: a password is needed", storage.location())))
            }
            (false, Some(_)) => {
                return Err(Error::new(
                    ErrorKind::WrongPassword,
                    format!(
                        "repository at {} is NOT encrypted although a password was given: refusing it (if it was \
                         created with --encryption none, open it with --no-password; otherwise its config was replaced)",
                        storage.location()
                    ),
                ))
            }
        };
        let (key_id, master) =
            keys::unlock(storage.as_ref(), &config.body.repo_id, encrypted, password)?;
        let keys = Keys::derive(&master, encrypted);
        if keys.config_mac(&config.body_bytes) != config.mac {
            return Err(Error::corrupt(format!(
                "{}: config does not match its MAC (tampered or from another repository)",
                storage.location()
            )));
        }
        Ok(Repository::unlocked(storage, keys, config, key_id, master))
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Objects that were damaged on one storage and read correctly from another, one message
    /// each. The data delivered was right; the damaged copy should be repaired (`rime check`
    /// on that storage, then `rime copy` from a good one).
    pub fn recovered(&self) -> Vec<String> {
        self.recovered.lock().clone()
    }

    pub(crate) fn note_recovered(&self, message: String) {
        self.recovered.lock().push(message);
    }

    /// Problems met during this process's reads that did not stop it but need the user's
    /// attention (a damaged index file), each once, for the command to print as warnings.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().clone()
    }

    pub(crate) fn note_warning(&self, message: String) {
        let mut w = self.warnings.lock();
        if !w.contains(&message) {
            w.push(message);
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn config(&self) -> &ConfigBody {
        &self.config.body
    }

    /// The key file this session was opened with.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn chunker(&self) -> crate::chunker::Chunker {
        crate::chunker::Chunker::new(self.config.body.chunker, self.keys.chunker_seed)
    }

    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<SnapshotId> {
        let (id, bytes) = seal_object(&self.keys, ObjectKind::Snapshot, &snap.encode());
        let id = SnapshotId(id);
        self.storage
            .write(FileKind::Snapshot, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        self.read_verified(
            FileKind::Snapshot,
            &id.to_hex(),
            &format!("snapshot {}", id.short()),
            |bytes| {
                let plain = open_object(&self.keys, ObjectKind::Snapshot, &id.0, bytes)?;
                Snapshot::decode(&plain).map_err(|e| e.within(format!("snapshot {}", id.short())))
            },
        )
    }

    /// Read a whole object and decode (and so verify) it. On several storages, an object that
    /// fails verification is read again from each copy in turn: a storage can serve damaged
    /// bytes without any error of its own, and the other copy is as good as the first. What
    /// was recovered is noted ([`Repository::recovered`]).
    pub(crate) fn read_verified<T>(
        &self,
        kind: FileKind,
        name: &str,
        what: &str,
        decode: impl Fn(&[u8]) -> Result<T>,
    ) -> Result<T> {
        let err = match self.storage.read(kind, name).and_then(|b| decode(&b)) {
            Ok(v) => return Ok(v),
            Err(e) if e.kind() == ErrorKind::Corrupt && self.storage.replicas() > 1 => e,
            Err(e) => return Err(e),
        };
        let copies = self.storage.replicas();
        for copy in 0..copies {
            if let Ok(v) = self
                .storage
                .read_replica(copy, kind, name)
                .and_then(|b| decode(&b))
            {
                self.note_recovered(format!(
                    "{what}: {err}; read again from copy {} of {copies}",
                    copy + 1
                ));
                return Ok(v);
            }
        }
        Err(err.within(format!("damaged on all {copies} storages")))
    }

    /// All snapshots, oldest first. A snapshot that cannot be read is returned as an error
    /// entry, so listing still shows the rest. One listed but gone when read was removed
    /// meanwhile (a `forget` running beside this command, which is allowed): it is left out,
    /// not reported as unreadable.
    pub fn list_snapshots(&self) -> Result<Vec<(SnapshotId, Result<Snapshot>)>> {
        let names = self.storage.list(FileKind::Snapshot)?;
        let mut out: Vec<(SnapshotId, Result<Snapshot>)> = {
            use rayon::prelude::*;
            names
                .par_iter()
                .filter_map(|o| SnapshotId::from_hex(&o.name).ok())
                .map(|id| (id, self.load_snapshot(&id)))
                .filter(|(_, s)| !matches!(s, Err(e) if e.kind() == ErrorKind::MissingObject))
                .collect()
        };
        out.sort_by_key(|(id, s)| (s.as_ref().map(|s| s.time).unwrap_or_default(), *id));
        Ok(out)
    }

    /// Read one blob given its index entry, verifying it.
    /// On several storages, a blob that fails verification is read again from each copy.
    pub fn read_blob(&self, pack: &crate::id::PackId, e: &PackEntry) -> Result<Vec<u8>> {
        let name = pack.to_hex();
        let (offset, len) = (u64::from(e.offset), u64::from(e.stored_len));
        let open =
            |stored: Vec<u8>| blob::open_blob(&self.keys, e.ty, e.flags, e.raw_len, &e.id, &stored);
        let err = match self
            .storage
            .read_range(FileKind::Pack, &name, offset, len)
            .and_then(open)
        {
            Ok(v) => return Ok(v),
            Err(err) if err.kind() == ErrorKind::Corrupt && self.storage.replicas() > 1 => err,
            Err(err) => return Err(err.within(format!("pack {name}"))),
        };
        let copies = self.storage.replicas();
        for copy in 0..copies {
            if let Ok(v) = self
                .storage
                .read_range_replica(copy, FileKind::Pack, &name, offset, len)
                .and_then(open)
            {
                self.note_recovered(format!(
                    "pack {name}, blob {}: {err}; read again from copy {} of {copies}",
                    e.id,
                    copy + 1
                ));
                return Ok(v);
            }
        }
        Err(err
            .within(format!("pack {name}"))
            .within(format!("damaged on all {copies} storages")))
    }

    pub fn load_tree(&self, index: &index::MasterIndex, id: &BlobId) -> Result<Tree> {
        let (pack, e) = index.lookup(id).ok_or_else(|| {
            Error::new(
                ErrorKind::MissingObject,
                format!("tree {id} is not in the index{}", index.missing_hint()),
            )
        })?;
        if e.ty != BlobType::Tree {
            return Err(Error::corrupt(format!(
                "blob {id} is indexed as data, expected a tree"
            )));
        }
        let plain = self.read_blob(&pack, &e)?;
        Tree::decode(&plain).map_err(|err| err.within(format!("tree {}", id.short())))
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
