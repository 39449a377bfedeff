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

    /// From an OpenStack openrc file, read as [`read_osrc`] does.
    pub fn from_osrc(path: &Path) -> Result<SwiftCredentials> {
        SwiftCredentials::from_map(&read_osrc(path, &HashMap::new())?)
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

/// One assignment of an openrc file, as far as it can be read without a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OsrcValue {
    Literal(String),
    /// The value needs the shell (`$VAR`, `$(cmd)`, backquotes, several words): its raw text.
    NeedsShell(String),
    /// `unset OS_X`.
    Unset,
}

/// Read an OpenStack rc file (`export OS_X=value` lines) without running it: the `OS_*` and
/// `ST_*` variables it sets, with lower-case keys, and then `given` (which wins).
///
/// Shell quoting is undone (single quotes, double quotes with `\` escapes), `#` comments and
/// other lines (`echo`, `read`, `if ...`) are ignored, and `unset` removes an earlier value. A
/// value that only the shell could compute, such as Horizon's `export
/// OS_PASSWORD=$OS_PASSWORD_INPUT`, is refused (naming the file and variable) unless `given`
/// supplies that variable: using the literal text would send `$OS_PASSWORD_INPUT` as the
/// password.
pub fn read_osrc(path: &Path, given: &HashMap<String, String>) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .io_context(|| format!("cannot read OpenStack rc file {}", path.display()))?;
    resolve_osrc(&parse_osrc(&text), given)
        .map_err(|e| e.within(format!("OpenStack rc file {}", path.display())))
}

/// The file's final values under `given`; a variable left needing the shell is an error.
fn resolve_osrc(
    assignments: &[(String, OsrcValue)],
    given: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    // Sorted, so that of several unusable variables the same one is named every time.
    let mut last: std::collections::BTreeMap<&str, &OsrcValue> = Default::default();
    for (k, v) in assignments {
        last.insert(k.as_str(), v);
    }
    let mut out = HashMap::new();
    for (k, v) in last {
        match v {
            _ if given.contains_key(k) => {}
            OsrcValue::Literal(s) => {
                out.insert(k.to_string(), s.clone());
            }
            OsrcValue::Unset => {}
            OsrcValue::NeedsShell(raw) => {
                return Err(Error::invalid(format!(
                    "{}={raw} needs the shell to expand it; rime reads rc files without \
                     running them: write the value into the file, or give {k} in the \
                     [storage:NAME] section",
                    k.to_ascii_uppercase()
                )))
            }
        }
    }
    out.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(out)
}

/// The `OS_*` / `ST_*` assignments and unsets of an rc file, in order, with lower-case keys.
fn parse_osrc(text: &str) -> Vec<(String, OsrcValue)> {
    let mut out = vec![];
    for line in text.lines() {
        let line = line.trim();
        if let Some(names) = line.strip_prefix("unset ") {
            for k in names.split_whitespace().filter(|k| is_credential_name(k)) {
                out.push((k.to_ascii_lowercase(), OsrcValue::Unset));
            }
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if is_credential_name(k) {
            out.push((k.to_ascii_lowercase(), shell_word(v)));
        }
    }
    out
}

fn is_credential_name(k: &str) -> bool {
    (k.starts_with("OS_") || k.starts_with("ST_"))
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The value of one shell word (what follows `NAME=`), if no expansion is needed: quotes and
/// backslashes are undone and a following `# comment` or `;` ends it.
fn shell_word(text: &str) -> OsrcValue {
    let needs_shell = || OsrcValue::NeedsShell(text.trim().to_string());
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return needs_shell(), // unterminated quote
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return needs_shell(),
                    },
                    Some('$' | '`') | None => return needs_shell(),
                    Some(c) => out.push(c),
                }
            },
            '\\' => match chars.next() {
                Some(c) => out.push(c),
                None => return needs_shell(),
            },
            '$' | '`' => return needs_shell(),
            ';' => break,
            c if c.is_whitespace() => {
                let rest: String = chars.by_ref().collect();
                let rest = rest.trim_start();
                if rest.is_empty() || rest.starts_with('#') || rest.starts_with(';') {
                    break;
                }
                // `OS_X=a b` is not one value (the shell would run `b`).
                return needs_shell();
            }
            c => out.push(c),
        }
    }
    OsrcValue::Literal(out)
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

    /// Horizon's openrc, as downloaded: quoted values, `if` lines, `unset`, and a password the
    /// shell reads from the terminal.
    const HORIZON: &str = r#"#!/usr/bin/env bash
export OS_AUTH_URL=http://127.0.0.1:5000/v3
export OS_PROJECT_ID=0a1b
export OS_PROJECT_NAME="demo"
export OS_USER_DOMAIN_NAME="Default"
if [ -z "$OS_USER_DOMAIN_NAME" ]; then unset OS_USER_DOMAIN_NAME; fi
unset OS_TENANT_ID
export OS_USERNAME="alice"
echo "Please enter your OpenStack Password for project $OS_PROJECT_NAME as user $OS_USERNAME: "
read -sr OS_PASSWORD_INPUT
export OS_PASSWORD=$OS_PASSWORD_INPUT
export OS_REGION_NAME="RegionOne"
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
"#;

    fn osrc_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("demo-openrc.sh");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn a_value_needing_the_shell_is_refused_with_file_and_variable() {
        let (_d, p) = osrc_file(HORIZON);
        let e = read_osrc(&p, &HashMap::new()).unwrap_err().to_string();
        for needle in [
            "OS_PASSWORD=$OS_PASSWORD_INPUT",
            "demo-openrc.sh",
            "section",
        ] {
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        let e = SwiftCredentials::from_osrc(&p).unwrap_err().to_string();
        assert!(e.contains("OS_PASSWORD"), "{e}");
    }

    #[test]
    fn a_given_value_replaces_one_the_file_cannot_supply() {
        let (_d, p) = osrc_file(HORIZON);
        let m = read_osrc(&p, &map(&[("os_password", "pw")])).unwrap();
        assert_eq!(m["os_password"], "pw");
        assert_eq!(m["os_project_name"], "demo");
        assert_eq!(m["os_user_domain_name"], "Default");
        assert_eq!(m["os_region_name"], "RegionOne");
        assert!(!m.contains_key("os_tenant_id"));
        assert!(SwiftCredentials::from_map(&m).is_ok());
    }

    #[test]
    fn shell_words_are_unquoted_and_comments_dropped() {
        for (text, want) in [
            ("demo # a comment", Some("demo")),
            ("demo;", Some("demo")),
            ("'a b#c'  # x", Some("a b#c")),
            ("\"p\\\"q\\$r\"", Some("p\"q$r")),
            ("'it'\\''s'", Some("it's")),
            ("a\\ b", Some("a b")),
            ("\"\"", Some("")),
            ("$X", None),
            ("\"${X}\"", None),
            ("$(cat pw)", None),
            ("`cat pw`", None),
            ("pre$X", None),
            ("'open", None),
            ("a b", None),
        ] {
            let got = match shell_word(text) {
                OsrcValue::Literal(s) => Some(s),
                OsrcValue::NeedsShell(raw) => {
                    assert_eq!(raw, text.trim());
                    None
                }
                OsrcValue::Unset => panic!(),
            };
            assert_eq!(got.as_deref(), want, "{text}");
        }
    }

    #[test]
    fn unset_removes_an_earlier_value_and_a_later_export_restores_it() {
        let (_d, p) = osrc_file("export OS_A=1\nunset OS_A OS_B\nexport OS_B=2\n");
        let m = read_osrc(&p, &HashMap::new()).unwrap();
        assert!(!m.contains_key("os_a"));
        assert_eq!(m["os_b"], "2");
        let (_d, p) = osrc_file("export OS_A=$X\nunset OS_A\n");
        assert!(read_osrc(&p, &HashMap::new()).unwrap().is_empty());
    }
}
