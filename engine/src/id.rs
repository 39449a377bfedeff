//! Typed 32-byte identifiers. Layers never pass bare `[u8; 32]` to each other, so a pack id
//! cannot be used where a blob id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub const LEN: usize = 32;

            pub fn from_bytes(b: [u8; 32]) -> Self {
                Self(b)
            }

            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first 8 hex digits, as shown to users.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            pub fn from_hex(s: &str) -> Result<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).map_err(|_| {
                    Error::invalid(format!("'{s}' is not a 64-digit hex {}", stringify!($name)))
                })?;
                Ok(Self(out))
            }

            pub fn random() -> Self {
                let mut b = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
                Self(b)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

id_type!(
    /// Keyed BLAKE3 of a blob's plaintext: names file data chunks and tree objects.
    BlobId
);
id_type!(
    /// Unkeyed BLAKE3 of a pack file's bytes: checkable without the key.
    PackId
);
id_type!(
    /// Keyed BLAKE3 of a snapshot's plaintext.
    SnapshotId
);
id_type!(
    /// Keyed BLAKE3 of an index file's plaintext.
    IndexId
);
id_type!(
    /// Random name of a key file.
    KeyId
);
id_type!(
    /// Random identity of a repository, chosen at `init`.
    RepoId
);
id_type!(
    /// Random name of a lock file.
    LockId
);
