//! SFTP version 3 wire format (draft-ietf-secsh-filexfer-02, what OpenSSH speaks), only the
//! parts rime needs: packets are `u32 length, u8 type, u32 request id, payload`, integers are
//! big-endian and strings are `u32 length, bytes`.

pub const FXP_INIT: u8 = 1;
pub const FXP_VERSION: u8 = 2;
pub const FXP_OPEN: u8 = 3;
pub const FXP_CLOSE: u8 = 4;
pub const FXP_READ: u8 = 5;
pub const FXP_WRITE: u8 = 6;
pub const FXP_FSTAT: u8 = 8;
pub const FXP_OPENDIR: u8 = 11;
pub const FXP_READDIR: u8 = 12;
pub const FXP_REMOVE: u8 = 13;
pub const FXP_MKDIR: u8 = 14;
pub const FXP_STAT: u8 = 17;
pub const FXP_RENAME: u8 = 18;
pub const FXP_EXTENDED: u8 = 200;

pub const FXP_STATUS: u8 = 101;
pub const FXP_HANDLE: u8 = 102;
pub const FXP_DATA: u8 = 103;
pub const FXP_NAME: u8 = 104;
pub const FXP_ATTRS: u8 = 105;
pub const FXP_EXTENDED_REPLY: u8 = 201;

pub const FXF_READ: u32 = 0x01;
pub const FXF_WRITE: u32 = 0x02;
pub const FXF_CREAT: u32 = 0x08;
pub const FXF_TRUNC: u32 = 0x10;
pub const FXF_EXCL: u32 = 0x20;

pub const FX_OK: u32 = 0;
pub const FX_EOF: u32 = 1;
pub const FX_NO_SUCH_FILE: u32 = 2;
pub const FX_PERMISSION_DENIED: u32 = 3;
/// Codes 5 to 8 (SFTP version 3).
pub const FX_BAD_MESSAGE: u32 = 5;
pub const FX_NO_CONNECTION: u32 = 6;
pub const FX_CONNECTION_LOST: u32 = 7;
pub const FX_OP_UNSUPPORTED: u32 = 8;

const ATTR_SIZE: u32 = 0x1;
const ATTR_UIDGID: u32 = 0x2;
const ATTR_PERMISSIONS: u32 = 0x4;
const ATTR_ACMODTIME: u32 = 0x8;
const ATTR_EXTENDED: u32 = 0x8000_0000;

/// Largest packet accepted from the server (OpenSSH's own limit is 256 KiB).
pub const MAX_PACKET: usize = 1 << 20;

/// A request being encoded; the length prefix is filled in by [`Request::finish`].
pub struct Request {
    buf: Vec<u8>,
}

impl Request {
    pub fn new(ty: u8, id: u32) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0, 0, 0, 0, ty]);
        buf.extend_from_slice(&id.to_be_bytes());
        Request { buf }
    }

    /// The INIT packet has a version where other packets have a request id.
    pub fn init() -> Self {
        Request::new(FXP_INIT, 3)
    }

    pub fn u32(mut self, v: u32) -> Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(mut self, v: u64) -> Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.buf.reserve(4 + v.len());
        self.buf.extend_from_slice(&(v.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(v);
        self
    }

    pub fn str(self, v: &str) -> Self {
        self.bytes(v.as_bytes())
    }

    /// Empty attributes (the server applies its defaults, e.g. the umask).
    pub fn no_attrs(self) -> Self {
        self.u32(0)
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = (self.buf.len() - 4) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

/// A reply: its type and the payload after the request id.
pub struct Reply {
    pub ty: u8,
    pub body: Vec<u8>,
    pos: usize,
}

/// A reply that did not parse; the connection is unusable afterwards.
#[derive(Debug)]
pub struct Malformed;

impl Reply {
    /// Split a packet (without its length prefix) into id and reply.
    pub fn parse(packet: Vec<u8>) -> Result<(u32, Reply), Malformed> {
        if packet.len() < 5 {
            return Err(Malformed);
        }
        let ty = packet[0];
        let id = u32::from_be_bytes(packet[1..5].try_into().expect("4 bytes"));
        Ok((
            id,
            Reply {
                ty,
                body: packet,
                pos: 5,
            },
        ))
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.body.get(self.pos..self.pos + 4).ok_or(Malformed)?;
        self.pos += 4;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.body.get(self.pos..self.pos + 8).ok_or(Malformed)?;
        self.pos += 8;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn bytes(&mut self) -> Result<&[u8], Malformed> {
        let n = self.u32()? as usize;
        let b = self.body.get(self.pos..self.pos + n).ok_or(Malformed)?;
        self.pos += n;
        Ok(b)
    }

    pub fn string(&mut self) -> Result<String, Malformed> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    /// The data of a DATA reply without copying it: the packet buffer is trimmed in place.
    pub fn into_data(mut self) -> Result<Vec<u8>, Malformed> {
        let n = self.u32()? as usize;
        if self.body.len() != self.pos + n {
            return Err(Malformed);
        }
        self.body.drain(..self.pos);
        Ok(self.body)
    }

    /// Attributes; only the size matters to rime (None when the server did not send one).
    pub fn attrs(&mut self) -> Result<Attrs, Malformed> {
        let flags = self.u32()?;
        let size = if flags & ATTR_SIZE != 0 {
            Some(self.u64()?)
        } else {
            None
        };
        if flags & ATTR_UIDGID != 0 {
            self.u32()?;
            self.u32()?;
        }
        if flags & ATTR_PERMISSIONS != 0 {
            self.u32()?;
        }
        let mut mtime = None;
        if flags & ATTR_ACMODTIME != 0 {
            self.u32()?; // atime
            mtime = Some(self.u32()?);
        }
        if flags & ATTR_EXTENDED != 0 {
            for _ in 0..self.u32()? {
                self.bytes()?;
                self.bytes()?;
            }
        }
        Ok(Attrs { size, mtime })
    }
}

/// The attributes rime uses from a file's SFTP attributes (version 3: times are 32-bit
/// seconds since the epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub mtime: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip() {
        let p = Request::new(FXP_OPEN, 7)
            .str("/a/b")
            .u32(FXF_READ)
            .no_attrs()
            .finish();
        assert_eq!(
            u32::from_be_bytes(p[..4].try_into().unwrap()) as usize,
            p.len() - 4
        );
        let (id, mut r) = Reply::parse(p[4..].to_vec()).unwrap();
        assert_eq!((id, r.ty), (7, FXP_OPEN));
        assert_eq!(r.string().unwrap(), "/a/b");
        assert_eq!(r.u32().unwrap(), FXF_READ);
        assert_eq!(r.attrs().unwrap(), Attrs::default());
        assert!(r.u32().is_err(), "reading past the end is Malformed");
    }

    #[test]
    fn data_without_copy() {
        let p = Request::new(FXP_DATA, 1).bytes(b"hello").finish();
        let (_, r) = Reply::parse(p[4..].to_vec()).unwrap();
        assert_eq!(r.into_data().unwrap(), b"hello");
    }
}
