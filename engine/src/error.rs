//! The one error type of the engine.
//!
//! Callers match on [`ErrorKind`] (to choose an exit code, or to decide whether a retry can help);
//! the context string names the object at fault (a pack id, a path, a key file) so that the
//! message a user reads says *what* is broken, not only *that* something is.

use std::fmt;

/// What went wrong, in categories a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No repository at the given location.
    RepositoryNotFound,
    /// A repository already exists where `init` was asked to create one.
    RepositoryExists,
    /// The repository was written by a newer format version than this build understands.
    UnsupportedVersion,
    /// No key file could be opened with the given password.
    WrongPassword,
    /// A stored object is missing.
    MissingObject,
    /// A stored object exists but its bytes are wrong (authentication, hash or decoding failed).
    Corrupt,
    /// A snapshot, path or key the user named does not exist.
    NotFound,
    /// The user asked for something invalid (bad argument, non-empty restore target...).
    InvalidInput,
    /// The local file system or storage reported an I/O error.
    Io,
    /// The storage ran out of space.
    NoSpace,
    /// Permission denied by the operating system or storage.
    PermissionDenied,
    /// Some source files could not be read; the snapshot was still written.
    PartialBackup,
    /// The repository is locked by another process.
    Locked,
    /// A storage could not be reached or answered with a transient failure (connection refused
    /// or reset, timeout, HTTP 5xx, 408, 429). Repeating the operation later may succeed.
    Unavailable,
    /// A storage rejected the credentials or the host's identity (HTTP 401/403 after a token
    /// renewal, unknown or changed SSH host key). Retrying without a change cannot help.
    Unauthorized,
    /// The operation was stopped on request (SIGINT or SIGTERM); nothing it did is referenced.
    Interrupted,
    /// A storage answered, but cannot do what was asked (no SFTP subsystem, an SFTP operation
    /// it does not support, an HTTP status that no retry changes such as 409 or 410).
    /// Retrying cannot help; with several storages, the next one is tried.
    Unsupported,
}

impl ErrorKind {
    /// Whether repeating the same operation may succeed (transient network or storage trouble).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Io | ErrorKind::Unavailable)
    }
}

/// An engine error: a kind, a human context naming the thing at fault, an optional cause, and
/// notes on what was done about it (shown after the cause).
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    notes: Vec<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        Error {
            kind,
            context: context.into(),
            source: None,
            notes: Vec::new(),
        }
    }

    pub fn with_source(
        kind: ErrorKind,
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error {
            kind,
            context: context.into(),
            source: Some(source.into()),
            notes: Vec::new(),
        }
    }

    /// An I/O error, classified by its OS error code (ENOSPC, EACCES, ENOENT get their own kinds).
    pub fn io(context: impl Into<String>, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                ErrorKind::PermissionDenied
            }
            _ if err.raw_os_error() == Some(libc::ENOSPC)
                || err.raw_os_error() == Some(libc::EDQUOT) =>
            {
                ErrorKind::NoSpace
            }
            _ => ErrorKind::Io,
        };
        Error::with_source(kind, context, err)
    }

    pub fn corrupt(context: impl Into<String>) -> Self {
        Error::new(ErrorKind::Corrupt, context)
    }

    pub fn invalid(context: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, context)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    /// Prefix the context with where the error happened (e.g. "pack 3fa1…: ").
    #[must_use]
    pub fn within(mut self, outer: impl fmt::Display) -> Self {
        self.context = format!("{outer}: {}", self.context);
        self
    }

    /// Add a note on what was done about the error (e.g. a partly written file set aside).
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// This error's notes, added to `other` (which takes this error's place).
    #[must_use]
    pub fn notes_onto(self, mut other: Error) -> Error {
        other.notes.extend(self.notes);
        other
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        for n in &self.notes {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Attach a context to I/O results in one call.
pub trait IoContext<T> {
    fn io_context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
