//! One 512-byte GNU tar header block: encoding and decoding.
//!
//! rime writes the GNU format (`ustar  \0` magic) because GNU tar's incremental features (dumpdir
//! entries, `L`/`K` long names, atime/ctime fields) exist only there. Numbers are octal with a
//! terminating NUL, or GNU base-256 when they do not fit (large files, uids, negative times).
//! Decoding never panics: malformed fields are reported as `None` and turned into errors by the
//! reader, so fuzzed or truncated archives fail cleanly.

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// GNU "magic + version" at offset 257.
pub const GNU_MAGIC: &[u8; 8] = b"ustar  \0";

/// The member types rime writes or understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
    /// GNU incremental directory (`D`): the data is the dumpdir (flagged names).
    Dumpdir,
    /// GNU old-style sparse file (`S`).
    Sparse,
    /// Any other typeflag (kept so that callers can say which one they skipped).
    Other(u8),
}

impl EntryKind {
    pub fn from_flag(f: u8) -> EntryKind {
        match f {
            b'0' | 0 | b'7' => EntryKind::Regular,
            b'1' => EntryKind::HardLink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::CharDevice,
            b'4' => EntryKind::BlockDevice,
            b'5' => EntryKind::Directory,
            b'6' => EntryKind::Fifo,
            b'D' => EntryKind::Dumpdir,
            b'S' => EntryKind::Sparse,
            o => EntryKind::Other(o),
        }
    }

    pub fn flag(self) -> u8 {
        match self {
            EntryKind::Regular => b'0',
            EntryKind::HardLink => b'1',
            EntryKind::Symlink => b'2',
            EntryKind::CharDevice => b'3',
            EntryKind::BlockDevice => b'4',
            EntryKind::Directory => b'5',
            EntryKind::Fifo => b'6',
            EntryKind::Dumpdir => b'D',
            EntryKind::Sparse => b'S',
            EntryKind::Other(o) => o,
        }
    }
}

/// A decoded (or to-be-encoded) member header, with long names already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Member name as stored (e.g. `./dir/file`, directories with a trailing `/`).
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits (and set-id/sticky bits), without the file type.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Size of the member data in the archive (for sparse members: the stored bytes).
    pub size: u64,
    pub mtime: i64,
    /// GNU incremental atime/ctime fields (0 when absent).
    pub atime: i64,
    pub ctime: i64,
    /// Link target for symlinks and hard links.
    pub link: Vec<u8>,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub dev_major: u64,
    pub dev_minor: u64,
    /// Sparse members: (offset, length) of each data region, and the real file size.
    pub sparse: Vec<(u64, u64)>,
    pub real_size: u64,
    /// The dumpdir of a directory from a POSIX (pax) archive, where GNU tar puts it in the
    /// `GNU.dumpdir` pax record of a typeflag `5` member instead of the data of a `D` member
    /// (the reader then sets `kind` to [`EntryKind::Dumpdir`]). `None` for `D` members, whose
    /// dumpdir is the member data; the writer ignores it.
    pub dumpdir: Option<Vec<u8>>,
}

impl Entry {
    pub fn new(path: Vec<u8>, kind: EntryKind) -> Entry {
        Entry {
            path,
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            atime: 0,
            ctime: 0,
            link: Vec::new(),
            uname: Vec::new(),
            gname: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
            sparse: Vec::new(),
            real_size: 0,
            dumpdir: None,
        }
    }
}

/// Write `v` into `field` as zero-padded octal with a trailing NUL, or base-256 if it does not
/// fit (GNU behaviour).
pub fn put_num(field: &mut [u8], v: i64) {
    let digits = field.len() - 1;
    let fits = v >= 0 && (digits >= 22 || (v as u64) < (1u64 << (3 * digits)));
    if fits {
        let s = format!("{:0width$o}", v, width = digits);
        field[..digits].copy_from_slice(s.as_bytes());
        field[digits] = 0;
    } else {
        // Base-256: two's complement big-endian, first byte's high bit set (0x80 / 0xff).
        let bytes = (v as i128).to_be_bytes();
        let n = field.len();
        for (i, b) in field.iter_mut().enumerate() {
            *b = bytes[16 - n + i];
        }
        field[0] = if v < 0 { 0xff } else { 0x80 };
    }
}

/// Decode an octal (space/NUL terminated, leading spaces allowed) or base-256 number.
pub fn get_num(field: &[u8]) -> Option<i64> {
    let first = *field.first()?;
    if first & 0x80 != 0 {
        let neg = first == 0xff;
        let mut v: i128 = if neg { -1 } else { 0 };
        for (i, &b) in field.iter().enumerate() {
            let b = if i == 0 {
                b & 0x7f | if neg { 0x80 } else { 0 }
            } else {
                b
            };
            v = v.checked_mul(256)? | i128::from(b);
        }
        if neg && v >= 0 {
            v -= 1i128 << (8 * field.len());
        }
        return i64::try_from(v).ok();
    }
    let mut v: i64 = 0;
    let mut seen = false;
    for &b in field {
        match b {
            b' ' if !seen => continue,
            b'0'..=b'7' => {
                seen = true;
                v = v.checked_mul(8)?.checked_add(i64::from(b - b'0'))?;
            }
            0 | b' ' => break,
            _ => return None,
        }
    }
    Some(v)
}

fn put_str(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

/// NUL-terminated (or full-width) string field.
pub fn get_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Sum of the header bytes with the checksum field counted as spaces (unsigned, as POSIX says;
/// the signed sum old tars used is accepted by [`checksum_ok`] too).
fn checksums(block: &[u8; BLOCK]) -> (i64, i64) {
    let mut u: i64 = 0;
    let mut s: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        u += i64::from(b);
        s += i64::from(b as i8);
    }
    (u, s)
}

/// Whether the block's stored checksum matches its contents.
pub fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    match get_num(&block[148..156]) {
        Some(stored) => {
            let (u, s) = checksums(block);
            stored == u || stored == s
        }
        None => false,
    }
}

/// Whether the block is all zeros (end-of-archive marker).
pub fn is_zero(block: &[u8; BLOCK]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// Encode a header block; `name` and `link` must already fit (the writer emits `L`/`K` first).
pub fn encode(e: &Entry, name: &[u8], link: &[u8]) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], name);
    put_num(&mut b[100..108], i64::from(e.mode & 0o7777));
    put_num(&mut b[108..116], e.uid as i64);
    put_num(&mut b[116..124], e.gid as i64);
    put_num(&mut b[124..136], e.size as i64);
    put_num(&mut b[136..148], e.mtime);
    b[156] = e.kind.flag();
    put_str(&mut b[157..257], link);
    b[257..265].copy_from_slice(GNU_MAGIC);
    put_str(&mut b[265..297], &e.uname);
    put_str(&mut b[297..329], &e.gname);
    if matches!(e.kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        put_num(&mut b[329..337], e.dev_major as i64);
        put_num(&mut b[337..345], e.dev_minor as i64);
    }
    if e.atime != 0 || e.ctime != 0 {
        put_num(&mut b[345..357], e.atime);
        put_num(&mut b[357..369], e.ctime);
    }
    let (sum, _) = checksums(&b);
    let s = format!("{:06o}", sum);
    b[148..154].copy_from_slice(s.as_bytes());
    b[154] = 0;
    b[155] = b' ';
    b
}

/// Why a header block could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Checksum,
    Field(&'static str),
}

/// Decode the fields of a header block (names are the raw 100-byte fields; ustar prefixes are
/// joined; the GNU sparse map is read from the header, extension blocks are the reader's job).
pub fn decode(b: &[u8; BLOCK]) -> Result<(Entry, bool), HeaderError> {
    if !checksum_ok(b) {
        return Err(HeaderError::Checksum);
    }
    let num = |r: std::ops::Range<usize>, what: &'static str| {
        get_num(&b[r]).ok_or(HeaderError::Field(what))
    };
    let kind = EntryKind::from_flag(b[156]);
    let mut path = get_str(&b[0..100]).to_vec();
    let is_ustar = &b[257..263] == b"ustar\0";
    let is_gnu = &b[257..265] == GNU_MAGIC;
    if is_ustar && b[345] != 0 {
        let mut p = get_str(&b[345..500]).to_vec();
        p.push(b'/');
        p.extend_from_slice(&path);
        path = p;
    }
    let mut e = Entry::new(path, kind);
    e.mode = (num(100..108, "mode")? & 0o7777) as u32;
    e.uid = num(108..116, "uid")? as u64;
    e.gid = num(116..124, "gid")? as u64;
    let size = num(124..136, "size")?;
    if size < 0 {
        return Err(HeaderError::Field("size"));
    }
    e.size = size as u64;
    e.mtime = num(136..148, "mtime")?;
    e.link = get_str(&b[157..257]).to_vec();
    e.uname = get_str(&b[265..297]).to_vec();
    e.gname = get_str(&b[297..329]).to_vec();
    if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        e.dev_major = num(329..337, "devmajor")? as u64;
        e.dev_minor = num(337..345, "devminor")? as u64;
    }
    let mut extended = false;
    if is_gnu {
        e.atime = get_num(&b[345..357]).unwrap_or(0);
        e.ctime = get_num(&b[357..369]).unwrap_or(0);
        if kind == EntryKind::Sparse {
            for i in 0..4 {
                let o = 386 + i * 24;
                if b[o] == 0 {
                    break;
                }
                let off = num(o..o + 12, "sparse offset")? as u64;
                let len = num(o + 12..o + 24, "sparse length")? as u64;
                e.sparse.push((off, len));
            }
            extended = b[482] != 0;
            e.real_size = num(483..495, "sparse real size")? as u64;
        }
    }
    Ok((e, extended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for v in [
            0i64,
            1,
            0o7777777,
            0o7777777 + 1,
            1 << 40,
            -1,
            -1_000_000,
            i64::MAX,
        ] {
            let mut f = [0u8; 12];
            put_num(&mut f, v);
            assert_eq!(get_num(&f), Some(v), "value {v}");
        }
        let mut f = [0u8; 8];
        put_num(&mut f, 0o7777777 + 1);
        assert_eq!(f[0], 0x80);
        assert_eq!(get_num(&f), Some(0o7777777 + 1));
    }

    #[test]
    fn header_round_trip() {
        let mut e = Entry::new(b"./a/b".to_vec(), EntryKind::Regular);
        e.size = 12345;
        e.mtime = 1_700_000_000;
        e.uname = b"root".to_vec();
        let b = encode(&e, &e.path.clone(), b"");
        let (d, ext) = decode(&b).unwrap();
        assert!(!ext);
        assert_eq!(d, e);
        let mut bad = b;
        bad[0] ^= 1;
        assert_eq!(decode(&bad), Err(HeaderError::Checksum));
    }
}
