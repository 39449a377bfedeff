//! A token and the storage URL it is good for, and when to renew it.

use std::time::{Duration, Instant};

/// The longest token life believed from a server: a far-future expiry (or a huge
/// `X-Auth-Token-Expires`) is taken as a year.
pub(super) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 86400);

/// What authentication yields. Immutable: renewal makes a new one.
pub(super) struct Session {
    pub token: String,
    /// The account URL (`.../v1/AUTH_x`), without a trailing slash.
    pub storage_url: String,
    /// When to stop using the token and ask for a new one (`None`: until the server says 401).
    renew_at: Option<Instant>,
}

impl Session {
    /// `asked` is when the token was requested (the lifetime counts from then, to be safe);
    /// the token is renewed a little before it expires — a fifth of its life, at most two
    /// minutes — so that a request in flight does not meet the deadline.
    pub fn new(
        token: String,
        storage_url: String,
        asked: Instant,
        lifetime: Option<Duration>,
    ) -> Session {
        let renew_at = lifetime.map(|l| asked + l - (l / 5).min(Duration::from_secs(120)));
        Session {
            token,
            storage_url: storage_url.trim_end_matches('/').to_string(),
            renew_at,
        }
    }

    pub fn fresh(&self) -> bool {
        !matches!(self.renew_at, Some(t) if Instant::now() >= t)
    }
}
