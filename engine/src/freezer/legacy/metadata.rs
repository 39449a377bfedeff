//! Freezer's per-backup metadata document, `metadata/<engine>/<host>_<name>/<L0>/<lvl>_<ts>/metadata`:
//! one JSON line such as `{"engine_name": "tar", "compression": "gzip", "encryption": true}`
//! (Freezer reads only the first line, `json.loads(content[0])`).
//!
//! The bytes come from a storage rime does not control, so parsing never panics (it is fuzzed:
//! `fuzz/fuzz_targets/freezer_metadata.rs`): anything unexpected is an error or a missing field.
//! The recorded values are hints only: restore detects compression and encryption from the
//! data itself.

use crate::error::{Error, Result};

/// The fields rime uses; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FreezerMetadata {
    /// `tar`, `rsync`, `nova`, ... (`None` when absent).
    pub engine_name: Option<String>,
    /// `gzip`, `bzip2` or `xz` as given to `--compression`.
    pub compression: Option<String>,
    /// Whether `--encrypt-pass-file` was set (Freezer records only this boolean).
    pub encryption: Option<bool>,
}

/// Larger documents are not Freezer metadata (the real ones are about 70 bytes).
const MAX_LEN: usize = 1 << 20;

impl FreezerMetadata {
    /// Parse the first line of `data` as a JSON object; `what` names the object in errors.
    pub fn parse(data: &[u8], what: &str) -> Result<FreezerMetadata> {
        if data.len() > MAX_LEN {
            return Err(Error::corrupt(format!(
                "Freezer metadata {what} is {} bytes: too large to be Freezer metadata",
                data.len()
            )));
        }
        let line = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
            Error::corrupt(format!("Freezer metadata {what} is not valid JSON: {e}"))
        })?;
        let obj = v.as_object().ok_or_else(|| {
            Error::corrupt(format!("Freezer metadata {what} is not a JSON object"))
        })?;
        let text = |k: &str| {
            obj.get(k)
                .and_then(|v| v.as_str())
                .map(|s| s.trim().to_string())
        };
        // Python's bool(...) was written; older or hand-made files may carry strings or 0/1.
        let encryption = obj.get("encryption").and_then(|v| match v {
            serde_json::Value::Bool(b) => Some(*b),
            serde_json::Value::Number(n) => n.as_f64().map(|f| f != 0.0),
            serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Some(true),
                "false" | "no" | "0" | "" | "none" => Some(false),
                _ => None,
            },
            serde_json::Value::Null => Some(false),
            _ => None,
        });
        Ok(FreezerMetadata {
            engine_name: text("engine_name"),
            compression: text("compression"),
            encryption,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_and_odd_documents() {
        let m = FreezerMetadata::parse(
            br#"{"engine_name": "tar", "compression": "gzip", "encryption": true}"#,
            "m",
        )
        .unwrap();
        assert_eq!(m.engine_name.as_deref(), Some("tar"));
        assert_eq!(m.compression.as_deref(), Some("gzip"));
        assert_eq!(m.encryption, Some(true));
        let m = FreezerMetadata::parse(b"{\"encryption\": \"False\"}\ntrailing junk", "m").unwrap();
        assert_eq!(m.encryption, Some(false));
        assert_eq!(m.engine_name, None);
        for bad in [&b""[..], b"[]", b"{", b"\xff\xfe", b"null", b"\n{}"] {
            assert!(FreezerMetadata::parse(bad, "m").is_err(), "{bad:?}");
        }
    }
}
