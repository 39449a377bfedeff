//! Key files: add, list, remove, unlock.

use crate::crypto::{derive_wrapping_key, Aead, KdfParams, MasterSecret};
use crate::error::{Error, ErrorKind, Result};
use crate::format::keyfile::{self, KeyFileBody, WRAP_AAD_PREFIX};
use crate::id::{KeyId, RepoId};
use crate::repo::{now_secs, Repository};
use crate::storage::{FileKind, Storage};

fn wrap_aad(repo: &RepoId) -> Vec<u8> {
    let mut a = WRAP_AAD_PREFIX.to_vec();
    a.extend_from_slice(repo.as_bytes());
    a
}

pub(crate) fn write_key_file(
    storage: &dyn Storage,
    repo: &RepoId,
    master: &MasterSecret,
    password: &[u8],
    kdf: Option<KdfParams>,
) -> Result<KeyId> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let wrapped = match kdf {
        Some(params) => {
            let k = derive_wrapping_key(password, &salt, params)?;
            Aead::new(&k).seal(&wrap_aad(repo), &master.0)
        }
        None => master.0.to_vec(),
    };
    let body = KeyFileBody {
        kdf,
        salt,
        wrapped,
        created: now_secs(),
        hostname: crate::hostname(),
        username: crate::username(),
    };
    let id = KeyId::random();
    storage.write(FileKind::Key, &id.to_hex(), &keyfile::encode(&body))?;
    Ok(id)
}

fn try_unwrap(
    repo: &RepoId,
    encrypted: bool,
    body: &KeyFileBody,
    password: &[u8],
) -> Result<Option<MasterSecret>> {
    match body.kdf {
        // A key file without a password in an encrypted repository is never accepted: it would
        // let anyone with write access to the storage substitute their own master secret.
        None if encrypted => Err(Error::corrupt(
            "key file without a password in an encrypted repository (refused)",
        )),
        Some(_) if !encrypted => Err(Error::corrupt(
            "password-protected key file in an unencrypted repository (refused)",
        )),
        None => {
            let b: [u8; 32] = body
                .wrapped
                .as_slice()
                .try_into()
                .map_err(|_| Error::corrupt("key file: bad length"))?;
            Ok(Some(MasterSecret(b)))
        }
        Some(params) => {
            let k = derive_wrapping_key(password, &body.salt, params)?;
            Ok(Aead::new(&k)
                .open(&wrap_aad(repo), &body.wrapped)
                .and_then(|m| {
                    let b: [u8; 32] = m.try_into().ok()?;
                    Some(MasterSecret(b))
                }))
        }
    }
}

/// Find the key file the password opens.
pub(crate) fn unlock(
    storage: &dyn Storage,
    repo: &RepoId,
    encrypted: bool,
    password: &[u8],
) -> Result<(KeyId, MasterSecret)> {
    let names = storage.list(FileKind::Key)?;
    if names.is_empty() {
        return Err(Error::corrupt(format!(
            "{}: repository has no key files",
            storage.location()
        )));
    }
    // One key file at a time (each may cost up to MAX_KDF_MEMORY_KIB), stopping at the first
    // that opens.
    let mut first_err = None;
    for o in &names {
        let attempt = (|| -> Result<Option<(KeyId, MasterSecret)>> {
            let id = KeyId::from_hex(&o.name)?;
            let body = keyfile::decode(&storage.read(FileKind::Key, &o.name)?)
                .map_err(|e| e.within(format!("key file {}", id.short())))?;
            Ok(try_unwrap(repo, encrypted, &body, password)?.map(|m| (id, m)))
        })();
        match attempt {
            Ok(Some(k)) => return Ok(k),
            Ok(None) => {}
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    Err(match first_err {
        Some(e) if names.len() == 1 => e,
        _ => Error::new(
            ErrorKind::WrongPassword,
            "wrong password: no key file of this repository opens with it",
        ),
    })
}

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: KeyId,
    pub current: bool,
    pub created: i64,
    pub hostname: String,
    pub username: String,
}

impl Repository {
    /// Add a key file for another password (the repository's secret is the same).
    pub fn add_key(&self, new_password: &[u8], kdf: KdfParams) -> Result<KeyId> {
        let kdf = self.keys.is_encrypted().then_some(kdf);
        write_key_file(
            self.storage.as_ref(),
            &self.config.body.repo_id,
            &self.master,
            new_password,
            kdf,
        )
    }

    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for o in self.storage.list(FileKind::Key)? {
            let id = KeyId::from_hex(&o.name)?;
            let body = keyfile::decode(&self.storage.read(FileKind::Key, &o.name)?)
                .map_err(|e| e.within(format!("key file {}", id.short())))?;
            out.push(KeyInfo {
                id,
                current: id == self.key_id,
                created: body.created,
                hostname: body.hostname,
                username: body.username,
            });
        }
        out.sort_by_key(|k| (k.created, k.id));
        Ok(out)
    }

    /// Remove a key file. Refuses the key in use and the last key.
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        if *id == self.key_id {
            return Err(Error::invalid(
                "refusing to remove the key file this session was opened with",
            ));
        }
        let keys = self.storage.list(FileKind::Key)?;
        if !keys.iter().any(|o| o.name == id.to_hex()) {
            return Err(Error::new(ErrorKind::NotFound, format!("no key file {id}")));
        }
        self.storage.remove(FileKind::Key, &id.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::format::config::Encryption;
    use crate::repo::InitOptions;
    use crate::storage::MemoryStorage;

    fn init(encryption: Encryption) -> (Arc<MemoryStorage>, Repository) {
        let s = Arc::new(MemoryStorage::new());
        let opts = InitOptions {
            encryption,
            kdf: KdfParams::TESTING,
            ..InitOptions::default()
        };
        let r = Repository::init(s.clone(), b"pw", &opts).unwrap();
        (s, r)
    }

    #[test]
    fn passwords_and_key_files() {
        let (s, repo) = init(Encryption::Aes256Gcm);
        assert!(Repository::open(s.clone(), Some(b"pw")).is_ok());
        let e = Repository::open(s.clone(), Some(b"nope")).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::WrongPassword);
        assert_eq!(
            Repository::open(s.clone(), None).err().unwrap().kind(),
            ErrorKind::InvalidInput
        );
        let k2 = repo.add_key(b"second", KdfParams::TESTING).unwrap();
        let r2 = Repository::open(s.clone(), Some(b"second")).unwrap();
        assert_eq!(r2.key_id(), k2);
        assert_eq!(r2.list_keys().unwrap().len(), 2);
        assert!(
            r2.remove_key(&k2).is_err(),
            "the key in use cannot be removed"
        );
        repo.remove_key(&k2).unwrap();
        assert_eq!(
            Repository::open(s.clone(), Some(b"second"))
                .err()
                .unwrap()
                .kind(),
            ErrorKind::WrongPassword
        );
    }

    #[test]
    fn password_less_key_file_is_refused_in_encrypted_repository() {
        let (s, repo) = init(Encryption::Aes256Gcm);
        // An attacker adds a key file without KDF holding a secret of their choice.
        let evil = MasterSecret([9; 32]);
        write_key_file(s.as_ref(), &repo.config().repo_id, &evil, b"", None).unwrap();
        let e = Repository::open(s.clone(), Some(b"anything"))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::WrongPassword, "{e}");
        assert_eq!(
            Repository::open(s, Some(b"pw"))
                .unwrap()
                .keys()
                .chunker_seed,
            repo.keys().chunker_seed
        );
    }

    #[test]
    fn unencrypted_repository_needs_explicit_consent() {
        let (s, _) = init(Encryption::None);
        let e = Repository::open(s.clone(), Some(b"pw")).err().unwrap();
        assert!(e.to_string().contains("NOT encrypted"), "{e}");
        assert!(!Repository::open(s, None).unwrap().keys().is_encrypted());
    }

    /// A storage whose config appears between init's check and its write (another `rime init`
    /// racing): it hides the config from listings, as it was before the other init wrote it.
    struct RacedInit(MemoryStorage);

    impl crate::storage::Storage for RacedInit {
        fn location(&self) -> String {
            "raced".into()
        }
        fn create(&self) -> Result<()> {
            Ok(())
        }
        fn list(&self, kind: FileKind) -> Result<Vec<crate::storage::ObjectInfo>> {
            match kind {
                FileKind::Config => Ok(vec![]),
                _ => self.0.list(kind),
            }
        }
        fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
            self.0.read(kind, name)
        }
        fn read_range(&self, k: FileKind, n: &str, o: u64, l: u64) -> Result<Vec<u8>> {
            self.0.read_range(k, n, o, l)
        }
        fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
            self.0.write(kind, name, data)
        }
        fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
            self.0.remove(kind, name)
        }
        fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
            self.0.size(kind, name)
        }
    }

    /// The init that loses a race fails with `RepositoryExists`, leaves the winner's config
    /// alone and takes its own key file away again.
    #[test]
    fn an_init_that_loses_the_race_fails_and_leaves_no_key_file() {
        let first = MemoryStorage::new();
        first
            .write(FileKind::Config, "config", b"the winner's config")
            .unwrap();
        let s = Arc::new(RacedInit(first));
        let opts = InitOptions {
            kdf: KdfParams::TESTING,
            ..InitOptions::default()
        };
        let e = Repository::init(s.clone(), b"pw", &opts).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::RepositoryExists, "{e}");
        assert_eq!(
            s.0.read(FileKind::Config, "config").unwrap(),
            b"the winner's config"
        );
        assert!(
            s.0.list(FileKind::Key).unwrap().is_empty(),
            "a key file of no repository"
        );
    }
}
