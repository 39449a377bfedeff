//! Keystone v3: a token from a password or an application credential, and the Swift endpoint
//! from the token's service catalog (type `object-store`, chosen by interface and region).

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use super::credentials::{Interface, KeystoneMethod};
use super::http::{credentials_rejected, header, status_error, transport_error};
use super::session::{Session, MAX_TOKEN_LIFETIME};
use crate::error::{Error, ErrorKind, Result};

/// `http://host:5000`, `.../v3` and `.../v3/` all name the same v3 API.
pub(super) fn tokens_url(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    }
}

fn named(name: &Option<String>, id: &Option<String>) -> Value {
    match (id, name) {
        (Some(id), _) => json!({ "id": id }),
        (None, Some(name)) => json!({ "name": name }),
        (None, None) => json!({}),
    }
}

fn with_domain(mut v: Value, domain_name: &Option<String>, domain_id: &Option<String>) -> Value {
    if v.get("name").is_some() {
        v["domain"] = named(domain_name, domain_id);
    }
    v
}

fn request_body(method: &KeystoneMethod) -> Value {
    match method {
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
        } => {
            let mut user = with_domain(named(username, user_id), user_domain_name, user_domain_id);
            user["password"] = json!(password);
            let project = with_domain(
                named(project_name, project_id),
                project_domain_name,
                project_domain_id,
            );
            json!({ "auth": {
                "identity": { "methods": ["password"], "password": { "user": user } },
                "scope": { "project": project }
            }})
        }
        KeystoneMethod::ApplicationCredential { id, secret } => json!({ "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": { "id": id, "secret": secret }
            }
        }}),
    }
}

fn who(method: &KeystoneMethod) -> String {
    match method {
        KeystoneMethod::Password {
            username,
            user_id,
            project_name,
            project_id,
            ..
        } => format!(
            "user {} in project {}",
            username.as_deref().or(user_id.as_deref()).unwrap_or("?"),
            project_name
                .as_deref()
                .or(project_id.as_deref())
                .unwrap_or("?")
        ),
        KeystoneMethod::ApplicationCredential { id, .. } => format!("application credential {id}"),
    }
}

pub(super) fn authenticate(
    http: &Client,
    auth_url: &str,
    method: &KeystoneMethod,
    region: Option<&str>,
    interface: Interface,
) -> Result<Session> {
    let url = tokens_url(auth_url);
    let what = || format!("Keystone auth at {auth_url} as {}", who(method));
    let asked = Instant::now();
    let resp = http
        .post(&url)
        .header("Content-Type", "application/json")
        .body(request_body(method).to_string())
        .send()
        .map_err(|e| transport_error(&what(), &e))?;
    let status = resp.status();
    if let Some(e) = credentials_rejected(&what(), status, "") {
        return Err(e);
    }
    if !status.is_success() {
        let body = resp.text().unwrap_or_default();
        let detail = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        let e = status_error(&what(), status);
        return Err(Error::new(e.kind(), format!("{e}{detail}")));
    }
    let token = header(&resp, "X-Subject-Token")
        .map(str::to_string)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{}: no X-Subject-Token in the answer", what()),
            )
        })?;
    let raw = resp.bytes().map_err(|e| transport_error(&what(), &e))?;
    let body: Value = serde_json::from_slice(&raw).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("{}: the answer is not JSON: {e}", what()),
        )
    })?;
    let storage_url = endpoint(&body["token"], region, interface).map_err(|e| e.within(what()))?;
    Ok(Session::new(
        token,
        storage_url,
        asked,
        lifetime(&body["token"]),
    ))
}

/// The token's life as Keystone states it (`expires_at - issued_at`), measured from when it was
/// asked for on this machine, so that a skewed local clock does not matter; a year at most.
fn lifetime(token: &Value) -> Option<Duration> {
    let t = |k: &str| {
        token[k]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    };
    let d = t("expires_at")?.signed_duration_since(t("issued_at")?);
    d.to_std().ok().map(|d| d.min(MAX_TOKEN_LIFETIME))
}

/// The object-store endpoint for this interface and region from the token's catalog.
pub(super) fn endpoint(
    token: &Value,
    region: Option<&str>,
    interface: Interface,
) -> Result<String> {
    let catalog = token["catalog"].as_array().cloned().unwrap_or_default();
    let services: Vec<&Value> = catalog
        .iter()
        .filter(|s| s["type"].as_str() == Some("object-store"))
        .collect();
    if services.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the token's catalog has no object-store (Swift) service",
        ));
    }
    let mut seen = Vec::new();
    for s in &services {
        for e in s["endpoints"].as_array().into_iter().flatten() {
            let iface = e["interface"].as_str().unwrap_or("");
            let reg = e["region_id"]
                .as_str()
                .or(e["region"].as_str())
                .unwrap_or("");
            seen.push(format!("{iface}@{reg}"));
            let region_ok = match region {
                None => true,
                Some(want) => want == reg || Some(want) == e["region"].as_str(),
            };
            if iface == interface.as_str() && region_ok {
                if let Some(url) = e["url"].as_str() {
                    return Ok(url.to_string());
                }
            }
        }
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!(
            "the catalog has no object-store endpoint for interface {} in region {} (it has: {})",
            interface.as_str(),
            region.unwrap_or("(any)"),
            seen.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_choice() {
        let token = json!({ "catalog": [
            { "type": "identity", "endpoints": [{ "interface": "public", "region_id": "R1", "url": "http://k" }] },
            { "type": "object-store", "endpoints": [
                { "interface": "public", "region_id": "R1", "url": "http://s1/v1/AUTH_p" },
                { "interface": "internal", "region_id": "R1", "url": "http://i1/v1/AUTH_p" },
                { "interface": "public", "region_id": "R2", "url": "http://s2/v1/AUTH_p" }
            ]}
        ]});
        assert_eq!(
            endpoint(&token, None, Interface::Public).unwrap(),
            "http://s1/v1/AUTH_p"
        );
        assert_eq!(
            endpoint(&token, Some("R2"), Interface::Public).unwrap(),
            "http://s2/v1/AUTH_p"
        );
        assert_eq!(
            endpoint(&token, Some("R1"), Interface::Internal).unwrap(),
            "http://i1/v1/AUTH_p"
        );
        let e = endpoint(&token, Some("R3"), Interface::Public).unwrap_err();
        assert!(
            e.to_string().contains("R3") && e.to_string().contains("public@R2"),
            "{e}"
        );
        assert!(endpoint(&json!({"catalog": []}), None, Interface::Public).is_err());
    }

    #[test]
    fn urls_and_bodies() {
        assert_eq!(tokens_url("http://k:5000"), "http://k:5000/v3/auth/tokens");
        assert_eq!(
            tokens_url("http://k:5000/v3/"),
            "http://k:5000/v3/auth/tokens"
        );
        let b = request_body(&KeystoneMethod::Password {
            username: Some("u".into()),
            user_id: None,
            password: "p".into(),
            user_domain_name: Some("Default".into()),
            user_domain_id: None,
            project_name: None,
            project_id: Some("pid".into()),
            project_domain_name: None,
            project_domain_id: None,
        });
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(b["auth"]["scope"]["project"], json!({ "id": "pid" }));
        let t = json!({ "issued_at": "2026-01-01T00:00:00.000000Z", "expires_at": "2026-01-01T01:00:00.000000Z" });
        assert_eq!(lifetime(&t), Some(Duration::from_secs(3600)));
    }
}
