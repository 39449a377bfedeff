//! `sftp://[user@]host[:port]/absolute/path` and `sftp://[user@]host[:port]/~/dir` (a path
//! under the login directory). User and port left out are taken from the ssh config by ssh.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpUrl {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Absolute (`/srv/backup`) or relative to the login directory (`backup`, `.`).
    pub path: String,
}

pub fn parse(url: &str) -> Result<SftpUrl> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "invalid SFTP URL {url:?}: {why} (expected sftp://user@host:port/absolute/path or sftp://user@host/~/dir)"
        ))
    };
    let rest = url
        .strip_prefix("sftp://")
        .ok_or_else(|| bad("it does not start with sftp://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => return Err(bad("no path")),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
        Some(_) => return Err(bad("empty user name")),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), Some(p)),
            None if after.is_empty() => (h.to_string(), None),
            None => return Err(bad("garbage after ']'")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() || host.starts_with('-') {
        return Err(bad("no host name"));
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad("bad port"))?,
        ),
        None => None,
    };
    let path = if path == "/~" || path == "/~/" {
        ".".to_string()
    } else if let Some(rel) = path.strip_prefix("/~/") {
        rel.trim_end_matches('/').to_string()
    } else {
        let p = path.trim_end_matches('/');
        if p.is_empty() {
            "/".to_string()
        } else {
            p.to_string()
        }
    };
    if path.split('/').any(|c| c == "..") {
        return Err(bad("'..' in the path"));
    }
    Ok(SftpUrl {
        user,
        host,
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = parse("sftp://root@127.0.0.1:2222/srv/repo/").unwrap();
        assert_eq!(
            u,
            SftpUrl {
                user: Some("root".into()),
                host: "127.0.0.1".into(),
                port: Some(2222),
                path: "/srv/repo".into()
            }
        );
        let u = parse("sftp://backup.example/~/rime").unwrap();
        assert_eq!((u.user, u.port, u.path.as_str()), (None, None, "rime"));
        assert_eq!(parse("sftp://h/~").unwrap().path, ".");
        let u = parse("sftp://me@[::1]:22/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(22)));
    }

    #[test]
    fn bad_forms_name_the_problem() {
        for (url, why) in [
            ("sftp://host", "no path"),
            ("sftp://h:0/x", "bad port"),
            ("sftp://h:99999/x", "bad port"),
            ("sftp://@h/x", "empty user"),
            ("sftp://-oProxyCommand=x/y", "no host"),
            ("sftp://h/a/../b", "'..'"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(url), "{url}: {e}");
        }
    }
}
