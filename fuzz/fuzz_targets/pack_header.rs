//! Pack headers and whole packs: `decode_header_plain` on the raw input, and `decode_pack` on
//! the input as a whole pack file, with the keys of an unencrypted repository and of an
//! encrypted one (the vectors' secret, so `format-spec/vectors/pack.bin` opens).
//!
//! Never panics; a decoded header re-encodes to the same bytes; a decoded pack's entries tile
//! the bytes before the header exactly, and a pack rebuilt from them decodes to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::format::blob::open_blob;
use rime_engine::format::pack::{decode_header_plain, decode_pack, encode_header, encode_header_plain, TRAILER_LEN};
use rime_fuzz::{keys_encrypted, keys_plain, MAX_RAW_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = decode_header_plain(data) {
        let enc = encode_header_plain(&entries);
        assert_eq!(enc, data, "pack header does not re-encode to its bytes");
        assert_eq!(decode_header_plain(&enc).expect("re-encoded header decodes"), entries);
    }
    for keys in [keys_plain(), keys_encrypted()] {
        let Ok(entries) = decode_pack(keys, data) else { continue };
        let header_len = u32::from_le_bytes(data[data.len() - TRAILER_LEN..][..4].try_into().unwrap()) as usize;
        let blobs_end = data.len() - TRAILER_LEN - header_len;
        let mut expect_offset = 0u64;
        for e in &entries {
            assert_eq!(u64::from(e.offset), expect_offset, "entries do not tile the pack");
            expect_offset += u64::from(e.stored_len);
            let stored = &data[e.offset as usize..(e.offset as usize + e.stored_len as usize)];
            if e.raw_len > MAX_RAW_LEN {
                continue; // see MAX_RAW_LEN
            }
            if let Ok(plain) = open_blob(keys, e.ty, e.flags, e.raw_len, &e.id, stored) {
                assert_eq!(plain.len(), e.raw_len as usize);
                assert_eq!(keys.blob_id(&plain), e.id);
            }
        }
        assert_eq!(expect_offset, blobs_end as u64, "entries do not fill the space before the header");
        let mut rebuilt = data[..blobs_end].to_vec();
        rebuilt.extend_from_slice(&encode_header(keys, &entries));
        if !keys.is_encrypted() {
            assert_eq!(rebuilt, data, "unencrypted pack does not re-encode to its bytes");
        }
        assert_eq!(decode_pack(keys, &rebuilt).expect("rebuilt pack decodes"), entries);
    }
});
