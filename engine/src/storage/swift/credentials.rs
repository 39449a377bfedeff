//! Swift credentials, taken the way python-swiftclient takes them.
//!
//! One storage's credentials come from the process environment (`ST_*` / `OS_*`), from an
//! OpenStack "openrc" file (`export OS_X=...` lines, as Freezer's `osrc =` option names), or from a
//! map of lower-case keys (a config file section), so that storages with different credentials
//! can be used side by side in one run.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Which Keystone interface's endpoint to use from the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    Public,
    Internal,
    Admin,
}

impl Interface {
    fn parse(s: &str) -> Result<Interface> {
        // swiftclient's older `OS_ENDPOINT_TYPE` spells them publicURL / internalURL / adminURL.
        match s.trim().to_ascii_lowercase().trim_end_matches("url") {
            "public" => Ok(Interface::Public),
            "internal" => Ok(Interface::Internal),
            "admin" => Ok(Interface::Admin),
            _ => Err(Error::invalid(format!(
                "OS_INTERFACE {s:?} is not one of public, internal, admin"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// How Keystone v3 is asked for a token.
#[derive(Clone, PartialEq, Eq)]
pub enum KeystoneMethod {
    /// A user name (or id) and password, scoped to a project.
    Password {
        username: Option<String>,
        user_id: Option<String>,
        password: String,
        user_domain_name: Option<String>,
        user_domain_id: Option<String>,
        project_name: Option<String>,
        project_id: Option<String>,
        project_domain_name: Option<String>,
        project_domain_id: Option<String>,
    },
    /// An application credential (already scoped to its project).
    ApplicationCredential { id: String, secret: String },
}

/// Everything needed to obtain a storage URL and a token.
#[derive(Clone, PartialEq, Eq)]
pub enum SwiftCredentials {
    /// Swift's own v1 auth (tempauth, swauth): `ST_AUTH`, `ST_USER`, `ST_KEY`.
    V1 {
        auth_url: String,
        user: String,
        key: String,
    },
    /// Keystone v3: `OS_AUTH_URL` and a method; the endpoint comes from the catalog.
    Keystone {
        auth_url: String,
        method: KeystoneMethod,
        region: Option<String>,
        interface: Interface,
    },
}

// Secrets never appear in debug output or messages.
impl fmt::Debug for SwiftCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwiftCredentials::V1 { auth_url, user, .. } => f
                .debug_struct("V1")
                .field("auth_url", auth_url)
                .field("user", user)
                .finish_non_exhaustive(),
            SwiftCredentials::Keystone {
                auth_url,
                method,
                region,
                interface,
            } => f
                .debug_struct("Keystone")
                .field("auth_url", auth_url)
                .field(
                    "method",
                    &match method {
                        KeystoneMethod::Password { .. } => "password",
                        KeystoneMethod::ApplicationCredential { .. } => "application_credential",
                    },
                )
                .field("region", region)
                .field("interface", interface)
                .finish_non_exhaustive(),
        }
    }
}

const KEYS: &[&str] = &[
    "st_auth",
    "st_user",
    "st_key",
    "os_auth_url",
    "os_username",
    "os_user_id",
    "os_password",
    "os_project_name",
    "os_project_id",
    "os_tenant_name",
    "os_tenant_id",
    "os_user_domain_name",
    "os_user_domain_id",
    "os_project_domain_name",
    "os_project_domain_id",
    "os_region_name",
    "os_interface",
    "os_endpoint_type",
    "os_application_credential_id",
    "os_application_credential_secret",
    "os_auth_type",
    "os_identity_api_version",
];

impl SwiftCredentials {
    /// From the process environment (`ST_AUTH`... or `OS_AUTH_URL`...).
    pub fn from_env() -> Result<SwiftCredentials> {
        SwiftCredentials::from_env_with(&HashMap::new())
    }

    /// From the process environment, with some lower-case keys replaced (command-line options
    /// such as `--os-region-name`, which win over `OS_REGION_NAME`).
    pub fn from_env_with(overrides: &HashMap<String, String>) -> Result<SwiftCredentials> {
        let mut map: HashMap<String, String> = KEYS
            .iter()
            .filter_map(|k| {
                std::env::var(k.to_ascii_uppercase())
                    .ok()
                    .map(|v| (k.to_string(), v))
            })
            .collect();
        map.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        SwiftCredentials::from_map(&map)
            .map_err(|e| e.within("Swift credentials from the environment"))
    }

    /// From an OpenStack openrc file: `export OS_X=value` (or `OS_X=value`) lines; quotes
    /// around values are removed, comments and other lines ignored.
    pub fn from_osrc(path: &Path) -> Result<SwiftCredentials> {
        let text = std::fs::read_to_string(path)
            .io_context(|| format!("cannot read OpenStack rc file {}", path.display()))?;
        SwiftCredentials::from_map(&parse_osrc(&text))
            .map_err(|e| e.within(format!("OpenStack rc file {}", path.display())))
    }

    /// From lower-case keys (`st_auth`, `os_auth_url`, `os_username`...), e.g. a config section.
    pub fn from_map(map: &HashMap<String, String>) -> Result<SwiftCredentials> {
        let get = |k: &str| {
            map.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        // swiftclient prefers v1 when ST_AUTH is given (its default auth version is 1.0).
        if let Some(auth_url) = get("st_auth") {
            let user = get("st_user")
                .ok_or_else(|| Error::invalid("ST_AUTH is set but ST_USER is missing"))?;
            let key = get("st_key")
                .ok_or_else(|| Error::invalid("ST_AUTH is set but ST_KEY is missing"))?;
            return Ok(SwiftCredentials::V1 {
                auth_url,
                user,
                key,
            });
        }
        let Some(auth_url) = get("os_auth_url") else {
            return Err(Error::invalid(
                "no Swift credentials: set ST_AUTH, ST_USER, ST_KEY (v1 auth) or OS_AUTH_URL with \
                 OS_USERNAME/OS_PASSWORD/OS_PROJECT_NAME or OS_APPLICATION_CREDENTIAL_ID/_SECRET (Keystone v3)",
            ));
        };
        if let Some(v) = get("os_identity_api_version") {
            if !v.starts_with('3') {
                return Err(Error::invalid(format!(
                    "OS_IDENTITY_API_VERSION={v}: only Keystone v3 is supported"
                )));
            }
        }
        let interface = match get("os_interface").or_else(|| get("os_endpoint_type")) {
            Some(s) => Interface::parse(&s)?,
            None => Interface::Public,
        };
        let app_id = get("os_application_credential_id");
        let wants_app = get("os_auth_type").is_some_and(|t| t == "v3applicationcredential");
        let method = if app_id.is_some() || wants_app {
            let id =
                app_id.ok_or_else(|| Error::invalid("OS_APPLICATION_CREDENTIAL_ID is missing"))?;
            let secret = get("os_application_credential_secret").ok_or_else(|| {
                Error::invalid("OS_APPLICATION_CREDENTIAL_ID is set but OS_APPLICATION_CREDENTIAL_SECRET is missing")
            })?;
            KeystoneMethod::ApplicationCredential { id, secret }
        } else {
            let username = get("os_username");
            let user_id = get("os_user_id");
            if username.is_none() && user_id.is_none() {
                return Err(Error::invalid(
                    "OS_AUTH_URL is set but neither OS_USERNAME nor OS_USER_ID",
                ));
            }
            let password = get("os_password")
                .ok_or_else(|| Error::invalid("OS_AUTH_URL is set but OS_PASSWORD is missing"))?;
            let project_name = get("os_project_name").or_else(|| get("os_tenant_name"));
            let project_id = get("os_project_id").or_else(|| get("os_tenant_id"));
            if project_name.is_none() && project_id.is_none() {
                return Err(Error::invalid(
                    "OS_PROJECT_NAME (or OS_PROJECT_ID) is missing: Swift needs a project-scoped token",
                ));
            }
            let user_domain_id = get("os_user_domain_id");
            let project_domain_id = get("os_project_domain_id");
            // Keystone needs a domain for names; "Default" is what openrc files usually mean.
            let user_domain_name = get("os_user_domain_name").or_else(|| {
                (user_id.is_none() && user_domain_id.is_none()).then(|| "Default".into())
            });
            let project_domain_name = get("os_project_domain_name").or_else(|| {
                (project_id.is_none() && project_domain_id.is_none()).then(|| "Default".into())
            });
            KeystoneMethod::Password {
                username,
                user_id,
                password,
                user_domain_name,
                user_domain_id,
                project_name,
                project_id,
                project_domain_name,
                project_domain_id,
            }
        };
        Ok(SwiftCredentials::Keystone {
            auth_url,
            method,
            region: get("os_region_name"),
            interface,
        })
    }

    /// The identity endpoint, for messages.
    pub fn auth_url(&self) -> &str {
        match self {
            SwiftCredentials::V1 { auth_url, .. } | SwiftCredentials::Keystone { auth_url, .. } => {
                auth_url
            }
        }
    }
}

/// `export OS_X=value` lines to lower-case keys; shell quoting of the simple kinds openrc files
/// use (single or double quotes around the whole value) is undone.
fn parse_osrc(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if !(k.starts_with("OS_") || k.starts_with("ST_"))
            || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            continue;
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            // An unquoted value ends at a comment.
            v.split(" #").next().unwrap_or(v).trim()
        };
        out.insert(k.to_ascii_lowercase(), v.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn v1_from_map() {
        let c = SwiftCredentials::from_map(&map(&[
            ("st_auth", "http://h/auth/v1.0"),
            ("st_user", "a:b"),
            ("st_key", "k"),
            ("os_auth_url", "ignored"),
        ]))
        .unwrap();
        assert_eq!(
            c,
            SwiftCredentials::V1 {
                auth_url: "http://h/auth/v1.0".into(),
                user: "a:b".into(),
                key: "k".into()
            }
        );
        let e =
            SwiftCredentials::from_map(&map(&[("st_auth", "x"), ("st_user", "u")])).unwrap_err();
        assert!(e.to_string().contains("ST_KEY"), "{e}");
    }

    #[test]
    fn osrc_password_and_defaults() {
        let text = "#!/bin/bash\n# comment\nexport OS_AUTH_URL=http://127.0.0.1:5000/v3\n\
                    export OS_USERNAME=\"alice\"\nexport OS_PASSWORD='s3cr=t'\n\
                    export OS_PROJECT_NAME=demo # trailing\nOS_REGION_NAME=RegionTwo\n\
                    export OS_INTERFACE=internalURL\nunset OS_TENANT_ID\necho hi\n";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rc");
        std::fs::write(&p, text).unwrap();
        let c = SwiftCredentials::from_osrc(&p).unwrap();
        let SwiftCredentials::Keystone {
            auth_url,
            method,
            region,
            interface,
        } = &c
        else {
            panic!("{c:?}")
        };
        assert_eq!(auth_url, "http://127.0.0.1:5000/v3");
        assert_eq!(region.as_deref(), Some("RegionTwo"));
        assert_eq!(*interface, Interface::Internal);
        let KeystoneMethod::Password {
            username,
            password,
            project_name,
            user_domain_name,
            project_domain_name,
            ..
        } = method
        else {
            panic!()
        };
        assert_eq!(username.as_deref(), Some("alice"));
        assert_eq!(password, "s3cr=t");
        assert_eq!(project_name.as_deref(), Some("demo"));
        assert_eq!(user_domain_name.as_deref(), Some("Default"));
        assert_eq!(project_domain_name.as_deref(), Some("Default"));
        assert!(
            !format!("{c:?}").contains("s3cr"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn application_credentials_and_errors() {
        let c = SwiftCredentials::from_map(&map(&[
            ("os_auth_url", "http://k/v3"),
            ("os_application_credential_id", "id1"),
            ("os_application_credential_secret", "sec"),
        ]))
        .unwrap();
        assert!(matches!(
            c,
            SwiftCredentials::Keystone {
                method: KeystoneMethod::ApplicationCredential { .. },
                ..
            }
        ));
        for (pairs, needle) in [
            (vec![], "no Swift credentials"),
            (
                vec![
                    ("os_auth_url", "u"),
                    ("os_username", "a"),
                    ("os_password", "p"),
                ],
                "OS_PROJECT_NAME",
            ),
            (
                vec![
                    ("os_auth_url", "u"),
                    ("os_username", "a"),
                    ("os_project_name", "p"),
                ],
                "OS_PASSWORD",
            ),
            (
                vec![("os_auth_url", "u"), ("os_application_credential_id", "i")],
                "SECRET",
            ),
            (
                vec![
                    ("os_auth_url", "u"),
                    ("os_interface", "sideways"),
                    ("os_username", "a"),
                ],
                "sideways",
            ),
        ] {
            let e = SwiftCredentials::from_map(&map(&pairs)).unwrap_err();
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        }
    }
}
