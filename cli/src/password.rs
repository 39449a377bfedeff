//! Where the password comes from: --password-file / RIME_PASSWORD_FILE, RIME_PASSWORD, or a
//! prompt when standard input is a terminal.

use std::io::IsTerminal;

use rime_engine::{Error, Result};

use crate::GlobalOpts;

pub fn read_password_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let s = std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read password file {}", path.display()), e))?;
    let first = s.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.is_empty() {
        return Err(Error::invalid(format!(
            "password file {} is empty",
            path.display()
        )));
    }
    Ok(first.to_vec())
}

/// The password for an existing repository.
pub fn get(g: &GlobalOpts) -> Result<Vec<u8>> {
    if let Some(p) = &g.password_file {
        return read_password_file(p);
    }
    if let Ok(p) = std::env::var("RIME_PASSWORD") {
        return Ok(p.into_bytes());
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("repository password: ")
            .map_err(|e| Error::io("cannot read password from the terminal", e))?;
        return Ok(p.into_bytes());
    }
    Err(Error::invalid(
        "no password given: use --password-file, RIME_PASSWORD_FILE or RIME_PASSWORD, or run on a terminal",
    ))
}

/// A new password (init, key add): from a file/variable, or typed twice on a terminal.
pub fn get_new(g: &GlobalOpts, file: Option<&std::path::Path>) -> Result<Vec<u8>> {
    if let Some(f) = file {
        return read_password_file(f);
    }
    if g.password_file.is_some() || std::env::var_os("RIME_PASSWORD").is_some() {
        return get(g);
    }
    if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("new password: ")
            .map_err(|e| Error::io("cannot read password", e))?;
        let b = rpassword::prompt_password("repeat password: ")
            .map_err(|e| Error::io("cannot read password", e))?;
        if a != b {
            return Err(Error::invalid("the passwords do not match"));
        }
        if a.is_empty() {
            return Err(Error::invalid("empty password refused"));
        }
        return Ok(a.into_bytes());
    }
    Err(Error::invalid(
        "no password given: use --password-file, RIME_PASSWORD_FILE or RIME_PASSWORD",
    ))
}
