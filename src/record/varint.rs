//! Zig-zag variable-length integers, as Kafka's record format encodes record fields.
//! Decoding never panics: a short or over-long varint is an error value.

use super::RecordError;

pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_varlong(out, i64::from(value));
}

/// Reads a zig-zag varlong from the front of `buf`, advancing it.
pub fn get_varlong(buf: &mut &[u8]) -> Result<i64, RecordError> {
    let mut zigzag: u64 = 0;
    // A 64-bit value takes at most 10 groups of 7 bits.
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(RecordError::Truncated { what: "varint" })?;
        *buf = rest;
        zigzag |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64));
        }
    }
    Err(RecordError::Malformed { what: "varint longer than 10 bytes" })
}

pub fn get_varint(buf: &mut &[u8]) -> Result<i32, RecordError> {
    let value = get_varlong(buf)?;
    i32::try_from(value).map_err(|_| RecordError::Malformed { what: "varint out of i32 range" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varlong_round_trip(value in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            let mut slice = out.as_slice();
            prop_assert_eq!(get_varlong(&mut slice).unwrap(), value);
            prop_assert!(slice.is_empty());
        }

        #[test]
        fn varlong_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut slice = bytes.as_slice();
            let _ = get_varlong(&mut slice);
        }
    }

    #[test]
    fn small_values_match_kafka_zigzag() {
        let mut out = Vec::new();
        for value in [0i64, -1, 1, -2, 63, -64, 64] {
            put_varlong(&mut out, value);
        }
        assert_eq!(out, vec![0, 1, 2, 3, 126, 127, 128, 1]);
    }
}
