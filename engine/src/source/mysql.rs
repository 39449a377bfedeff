//! MySQL and MariaDB: connection settings from Freezer's `--mysql-conf` file, logical dumps
//! (`mariadb-dump --single-transaction`) and the `FLUSH TABLES WITH READ LOCK` session that
//! makes a file system snapshot of a running server consistent.
//!
//! rime drives the server's own client programs rather than speaking the wire protocol: they
//! are installed wherever the server is, and they are what a DBA trusts to make a dump.
//! The password never appears on a command line: it goes to the clients through a private
//! temporary `--defaults-extra-file`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::error::{Error, ErrorKind, IoContext, Result};

/// Connection settings: `key = value` lines (Freezer's format, sections such as `[client]`
/// allowed and ignored). Known keys: host, port, user, password, socket, and optionally
/// `databases` (space-separated; default: all).
#[derive(Debug, Clone, Default)]
pub struct MysqlConf {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub socket: Option<String>,
    pub databases: Vec<String>,
}

impl MysqlConf {
    pub fn load(path: &Path) -> Result<MysqlConf> {
        let text = std::fs::read_to_string(path)
            .io_context(|| format!("cannot read MySQL configuration {}", path.display()))?;
        Self::parse(&text).map_err(|e| e.within(path.display()))
    }

    pub fn parse(text: &str) -> Result<MysqlConf> {
        let mut kv = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') || l.starts_with('[') {
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                return Err(Error::invalid(format!(
                    "line {}: expected key = value",
                    n + 1
                )));
            };
            let v = v.trim().trim_matches('"').trim_matches('\'');
            kv.insert(k.trim().to_ascii_lowercase().replace('-', "_"), v.to_string());
        }
        let mut c = MysqlConf {
            host: kv.remove("host"),
            user: kv.remove("user"),
            password: kv.remove("password"),
            socket: kv.remove("socket"),
            ..Default::default()
        };
        if let Some(p) = kv.remove("port") {
            c.port = Some(
                p.parse()
                    .map_err(|_| Error::invalid(format!("port {p:?} is not a port number")))?,
            );
        }
        if let Some(d) = kv.remove("databases") {
            c.databases = d.split_whitespace().map(String::from).collect();
        }
        if c.host.is_none() && c.socket.is_none() {
            return Err(Error::invalid("give host (and port) or socket"));
        }
        Ok(c)
    }

    /// A `[client]` options file for the MySQL client programs, private to this process.
    pub fn defaults_file(&self) -> Result<DefaultsFile> {
        let dir = std::env::temp_dir();
        let path = dir.join(format!(
            "rime-mysql-{}-{:x}.cnf",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut body = String::from("[client]\n");
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                body.push_str(&format!("{k}=\"{}\"\n", v.replace('\\', "\\\\").replace('"', "\\\"")));
            }
        };
        put("host", &self.host);
        put("port", &self.port.map(|p| p.to_string()));
        put("user", &self.user);
        put("password", &self.password);
        put("socket", &self.socket);
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .io_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(body.as_bytes())
            .io_context(|| format!("cannot write {}", path.display()))?;
        Ok(DefaultsFile { path })
    }
}

/// A temporary client options file, removed on drop.
pub struct DefaultsFile {
    path: PathBuf,
}

impl DefaultsFile {
    pub fn arg(&self) -> String {
        format!("--defaults-extra-file={}", self.path.display())
    }
}

impl Drop for DefaultsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The first of `names` found on PATH.
pub fn find_program(names: &[&str]) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for n in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(n);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::new(
        ErrorKind::NotFound,
        format!("none of {names:?} is installed (install the MariaDB or MySQL client)"),
    ))
}

/// The dump command: consistent without locking InnoDB tables, with routines, events and
/// triggers, and (when the binary log is on) the binlog position as a comment.
pub fn dump_command(conf: &MysqlConf, defaults: &DefaultsFile, binlog: bool) -> Result<Command> {
    let prog = find_program(&["mariadb-dump", "mysqldump"])?;
    let mut c = Command::new(prog);
    c.arg(defaults.arg())
        .args(["--single-transaction", "--routines", "--events", "--triggers"])
        .args(["--hex-blob", "--quick"]);
    if binlog {
        c.arg("--master-data=2");
    }
    if conf.databases.is_empty() {
        c.arg("--all-databases");
    } else {
        c.arg("--databases").args(&conf.databases);
    }
    Ok(c)
}

/// The client for running SQL (restores, locks).
pub fn client_command(defaults: &DefaultsFile) -> Result<Command> {
    let prog = find_program(&["mariadb", "mysql"])?;
    let mut c = Command::new(prog);
    c.arg(defaults.arg());
    Ok(c)
}

/// Binary log coordinates (`SHOW MASTER STATUS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogPosition {
    pub file: String,
    pub position: u64,
}

impl BinlogPosition {
    pub fn annotations(&self) -> Vec<(String, String)> {
        vec![
            ("mysql.binlog_file".into(), self.file.clone()),
            ("mysql.binlog_position".into(), self.position.to_string()),
        ]
    }
}

/// The current binlog position, or `None` when the binary log is off.
pub fn binlog_position(defaults: &DefaultsFile) -> Result<Option<BinlogPosition>> {
    let out = client_command(defaults)?
        .args(["-N", "-B", "-e", "SHOW MASTER STATUS"])
        .stdin(Stdio::null())
        .output()
        .io_context(|| "cannot run the MySQL client".to_string())?;
    if !out.status.success() {
        return Err(client_error("SHOW MASTER STATUS", &out.stderr));
    }
    Ok(parse_master_status(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_master_status(text: &str) -> Option<BinlogPosition> {
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let mut f = line.split('\t');
    let file = f.next()?.to_string();
    let position = f.next()?.trim().parse().ok()?;
    Some(BinlogPosition { file, position })
}

fn client_error(what: &str, stderr: &[u8]) -> Error {
    let text = String::from_utf8_lossy(stderr);
    // The client echoes the statement between dashes; the server's words are the ERROR lines.
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("ERROR")).collect();
    let msg = if errors.is_empty() {
        text.trim().to_string()
    } else {
        errors.join("; ")
    };
    let kind = if msg.contains("Access denied") {
        ErrorKind::Unauthorized
    } else if msg.contains("Can't connect") {
        ErrorKind::Unavailable
    } else {
        ErrorKind::InvalidInput
    };
    Error::new(kind, format!("MySQL refused {what}: {msg}"))
}

/// A held `FLUSH TABLES WITH READ LOCK`: the lock lives as long as the client's session, so
/// the client process is kept running until [`ReadLock::release`] (or drop) ends it.
pub struct ReadLock {
    child: Child,
    stdin: Option<ChildStdin>,
    pub binlog: Option<BinlogPosition>,
}

impl ReadLock {
    /// Flush and lock all tables, and read the binlog position while writes are blocked.
    pub fn acquire(defaults: &DefaultsFile) -> Result<ReadLock> {
        let mut child = client_command(defaults)?
            .args(["-N", "-B", "--unbuffered"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .io_context(|| "cannot run the MySQL client".to_string())?;
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let sent = stdin.write_all(
            b"FLUSH TABLES WITH READ LOCK;\nSHOW MASTER STATUS;\nSELECT 'rime-locked';\n",
        );
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut locked = false;
        if sent.is_ok() {
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.trim() == "rime-locked" {
                    locked = true;
                    break;
                }
                lines.push(std::mem::take(&mut line));
            }
        }
        if !locked {
            drop(stdin);
            let out = child.wait_with_output();
            let stderr = out.map(|o| o.stderr).unwrap_or_default();
            return Err(client_error("FLUSH TABLES WITH READ LOCK", &stderr));
        }
        // Keep draining stdout in the background so the client never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut reader, &mut sink);
        });
        Ok(ReadLock {
            child,
            stdin: Some(stdin),
            binlog: parse_master_status(&lines.concat()),
        })
    }

    /// Unlock the tables and end the session.
    pub fn release(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        let Some(mut stdin) = self.stdin.take() else {
            return Ok(());
        };
        let _ = stdin.write_all(b"UNLOCK TABLES;\n");
        drop(stdin);
        let st = self
            .child
            .wait()
            .io_context(|| "waiting for the MySQL client".to_string())?;
        if !st.success() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the MySQL session holding the read lock ended with {st}"),
            ));
        }
        Ok(())
    }
}

impl Drop for ReadLock {
    fn drop(&mut self) {
        if self.finish().is_err() {
            let _ = self.child.kill();
        }
    }
}

/// Binlog coordinates written into a dump by `--master-data=2`, from its first bytes.
pub fn binlog_from_dump(head: &[u8]) -> Option<BinlogPosition> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().find(|l| l.contains("CHANGE MASTER TO MASTER_LOG_FILE="))?;
    let file = line.split("MASTER_LOG_FILE='").nth(1)?.split('\'').next()?;
    let pos = line.split("MASTER_LOG_POS=").nth(1)?;
    let pos: String = pos.chars().take_while(char::is_ascii_digit).collect();
    Some(BinlogPosition {
        file: file.to_string(),
        position: pos.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezer_conf_and_sections() {
        let c = MysqlConf::parse(
            "# Freezer's format\nhost = 127.0.0.1\nuser = backup\npassword = 'pw'\nport=3307\n[client]\n",
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.port, Some(3307));
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert!(MysqlConf::parse("user = x\n").is_err(), "no host nor socket");
        assert!(MysqlConf::parse("host = h\nport = x\n").is_err());
    }

    #[test]
    fn binlog_positions() {
        assert_eq!(
            parse_master_status("mysql-bin.000003\t1234\t\t\n"),
            Some(BinlogPosition {
                file: "mysql-bin.000003".into(),
                position: 1234
            })
        );
        assert_eq!(parse_master_status(""), None);
        let head = b"-- MariaDB dump\n-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000002', MASTER_LOG_POS=328;\n";
        assert_eq!(
            binlog_from_dump(head).map(|b| (b.file, b.position)),
            Some(("mysql-bin.000002".to_string(), 328))
        );
    }
}
