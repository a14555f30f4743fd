//! Record batches as bytes, in the layout of Kafka's message format v2.
//!
//! A batch is the unit a producer sends, a leader appends, a segment stores and a consumer
//! fetches. The leader stamps the base offset and the partition leader epoch into the
//! header; those two fields sit outside the CRC (as in Kafka) so stamping them never
//! recomputes it. Everything from `attributes` to the end is covered by a CRC-32C, checked
//! wherever bytes come from a disk or a wire. This module owns the byte layout; it does not
//! own offsets assignment (the log does) or compression (not modelled yet: a compressed
//! batch is rejected as `Unsupported`).
//!
//! ```text
//! base_offset i64 | batch_length i32 | partition_leader_epoch i32 | magic i8 = 2 | crc u32
//! | attributes i16 | last_offset_delta i32 | base_timestamp i64 | max_timestamp i64
//! | producer_id i64 | producer_epoch i16 | base_sequence i32 | record_count i32 | records
//! record: length varint | attributes i8 | timestamp_delta varlong | offset_delta varint
//!         | key_length varint | key | value_length varint | value | header_count varint
//!         | headers (key_length varint, key utf8, value_length varint, value)
//! ```

mod varint;

use crate::types::{Epoch, Offset, NO_PRODUCER_ID};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;
use varint::{get_varint, get_varlong, put_varint, put_varlong};

/// Bytes before the records: Kafka's RECORD_BATCH_OVERHEAD.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes covered by neither batch_length nor CRC: base_offset and batch_length themselves.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Kafka's current message format.
pub const MAGIC_V2: i8 = 2;
/// Where the CRC-covered region starts (the attributes field).
const CRC_START: usize = 21;
const CRC_FIELD: usize = 17;
/// The largest batch accepted (Kafka's default message.max.bytes is about 1 MiB).
pub const BATCH_BYTES_MAX: usize = 1024 * 1024;
/// Kafka's attribute bit for control batches.
const CONTROL_FLAG: i16 = 0x20;
/// The key of a gap-marker control record (Kafka's control keys are version + type; type
/// 0 and 1 are transaction markers, so the testbed's own marker takes a type of its own).
const GAP_MARKER_KEY: &[u8] = &[0, 0, 0, 0x7f];
/// Kafka's "no leader epoch" and "no sequence" sentinels.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
pub const NO_SEQUENCE: i32 = -1;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("truncated {what}")]
    Truncated { what: &'static str },
    #[error("malformed batch: {what}")]
    Malformed { what: &'static str },
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unsupported magic {magic}")]
    BadMagic { magic: i8 },
    #[error("unsupported: {what}")]
    Unsupported { what: &'static str },
    #[error("batch of {bytes} bytes exceeds the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
}

/// One record as the client sees it. `offset` is absolute once the batch has a base offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: Offset,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
}

/// The decoded batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: Offset,
    pub batch_length: u32,
    pub partition_leader_epoch: i32,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: u32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: u32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> Offset {
        self.base_offset.plus(u64::from(self.last_offset_delta))
    }

    /// The sequence of the batch's last record (sequences wrap at i32::MAX, as in Kafka).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    /// A control batch (attribute bit 5) carries markers, not client records; readers
    /// skip its records but move past its last offset.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }

    /// The leader epoch the batch was appended in, if stamped.
    pub fn leader_epoch(&self) -> Option<Epoch> {
        u32::try_from(self.partition_leader_epoch).ok().map(Epoch)
    }

    pub fn total_bytes(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD_BYTES
    }
}

/// A validated record batch: its bytes passed the length, magic and CRC checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
    header: BatchHeader,
}

impl RecordBatch {
    /// Validates one batch that fills `bytes` exactly.
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, RecordError> {
        let header = parse_header(&bytes)?;
        if header.total_bytes() != bytes.len() {
            return Err(RecordError::Malformed { what: "batch length does not match buffer" });
        }
        verify_crc(&bytes, header.crc)?;
        let batch = RecordBatch { bytes, header };
        // Records must decode too: a batch that passes its CRC but not its own layout was
        // built wrong, and must be refused before it reaches a log. The walk allocates
        // nothing; `records()` decodes for real.
        batch.walk_records(|_, _| Ok(()))?;
        Ok(batch)
    }

    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn base_offset(&self) -> Offset {
        self.header.base_offset
    }

    pub fn last_offset(&self) -> Offset {
        self.header.last_offset()
    }

    pub fn next_offset(&self) -> Offset {
        self.last_offset().next()
    }

    pub fn record_count(&self) -> u32 {
        self.header.record_count
    }

    /// Stamps the base offset and leader epoch (outside the CRC, so it stays valid).
    pub fn with_position(self, base_offset: Offset, leader_epoch: Epoch) -> RecordBatch {
        let mut bytes = BytesMut::from(self.bytes.as_ref());
        bytes[0..8].copy_from_slice(&(base_offset.0 as i64).to_be_bytes());
        bytes[12..16].copy_from_slice(&(leader_epoch.0 as i32).to_be_bytes());
        let mut header = self.header;
        header.base_offset = base_offset;
        header.partition_leader_epoch = leader_epoch.0 as i32;
        RecordBatch { bytes: bytes.freeze(), header }
    }

    /// Decodes every record, with absolute offsets. Keys, values and header values share
    /// the batch's bytes (no copies).
    pub fn records(&self) -> Result<Vec<Record>, RecordError> {
        let mut records = Vec::with_capacity(self.header.record_count.min(4096) as usize);
        self.walk_records(|raw, fields| {
            let slice = |range: Option<(usize, usize)>| {
                range.map(|(at, len)| self.bytes.slice(at..at + len))
            };
            let headers = fields
                .headers
                .iter()
                .map(|&(name, value)| {
                    let name = String::from_utf8_lossy(&self.bytes[name.0..name.0 + name.1]);
                    (name.into_owned(), self.bytes.slice(value.0..value.0 + value.1))
                })
                .collect();
            records.push(Record {
                offset: raw.offset,
                timestamp_ms: raw.timestamp_ms,
                key: slice(fields.key),
                value: slice(fields.value),
                headers,
            });
            Ok(())
        })?;
        Ok(records)
    }

    /// Walks the records' layout, handing each record's position fields to `visit`.
    fn walk_records(
        &self,
        mut visit: impl FnMut(&RawRecord, &RecordFields) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        let mut cursor = Cursor { bytes: &self.bytes, at: BATCH_HEADER_BYTES };
        let mut fields = RecordFields::default();
        let mut last = None;
        for _ in 0..self.header.record_count {
            let raw = decode_record(&mut cursor, &self.header, &mut fields)?;
            if last.is_some_and(|previous| raw.offset <= previous) {
                return Err(RecordError::Malformed { what: "record offsets not increasing" });
            }
            last = Some(raw.offset);
            for &((at, len), _) in &fields.headers {
                std::str::from_utf8(&self.bytes[at..at + len])
                    .map_err(|_| RecordError::Malformed { what: "header key is not utf-8" })?;
            }
            visit(&raw, &fields)?;
        }
        if cursor.at != self.bytes.len() {
            return Err(RecordError::Malformed { what: "trailing bytes after the last record" });
        }
        match last {
            Some(last) if !self.header.is_control() && last != self.header.last_offset() => {
                Err(RecordError::Malformed { what: "last offset delta does not match records" })
            }
            None => Err(RecordError::Malformed { what: "empty batch" }),
            _ => Ok(()),
        }
    }
}

/// Builds a batch from records; offsets are relative until the leader stamps a base.
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    count: u32,
    records: Vec<u8>,
}

impl BatchBuilder {
    /// A builder for a producer without idempotence.
    pub fn new() -> Self {
        Self::idempotent(NO_PRODUCER_ID, -1, NO_SEQUENCE)
    }

    pub fn idempotent(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        BatchBuilder {
            producer_id,
            producer_epoch,
            base_sequence,
            base_timestamp: None,
            max_timestamp: -1,
            count: 0,
            records: Vec::new(),
        }
    }

    pub fn record_count(&self) -> u32 {
        self.count
    }

    /// The batch size if built now.
    pub fn size_bytes(&self) -> usize {
        BATCH_HEADER_BYTES + self.records.len()
    }

    pub fn push(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(String, Bytes)],
    ) {
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp_ms);
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        let mut body =
            Vec::with_capacity(16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
        body.push(0); // record attributes: unused in v2
        put_varlong(&mut body, timestamp_ms - base_timestamp);
        put_varint(&mut body, self.count as i32);
        put_bytes(&mut body, key);
        put_bytes(&mut body, value);
        put_varint(&mut body, headers.len() as i32);
        for (name, header_value) in headers {
            put_bytes(&mut body, Some(name.as_bytes()));
            put_bytes(&mut body, Some(header_value));
        }
        put_varint(&mut self.records, body.len() as i32);
        self.records.extend_from_slice(&body);
        self.count += 1;
    }

    /// Encodes the batch with base offset 0 and no leader epoch.
    pub fn build(&self) -> RecordBatch {
        assert!(self.count > 0, "a record batch holds at least one record");
        let mut out = BytesMut::with_capacity(self.size_bytes());
        let batch_length = (self.size_bytes() - LOG_OVERHEAD_BYTES) as i32;
        out.put_i64(0);
        out.put_i32(batch_length);
        out.put_i32(NO_PARTITION_LEADER_EPOCH);
        out.put_i8(MAGIC_V2);
        out.put_u32(0); // crc, filled below
        out.put_i16(0); // attributes: no compression, not transactional
        out.put_i32(self.count as i32 - 1);
        out.put_i64(self.base_timestamp.unwrap_or(0));
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.count as i32);
        out.extend_from_slice(&self.records);
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[CRC_FIELD..CRC_FIELD + 4].copy_from_slice(&crc.to_be_bytes());
        let bytes = out.freeze();
        let header = parse_header(&bytes).expect("a freshly built batch has a valid header");
        RecordBatch { bytes, header }
    }
}

/// A control batch that covers `first..=last` with a single marker record at `last`:
/// recovery writes one where durable data was destroyed, so readers move past offsets that
/// will never hold records again instead of waiting for them.
pub fn gap_marker(first: Offset, last: Offset, leader_epoch: Epoch) -> RecordBatch {
    assert!(first <= last, "gap marker from {first} to {last}");
    let span = last.0 - first.0;
    assert!(span < i32::MAX as u64, "gap of {span} offsets does not fit one batch");
    let mut body = Vec::with_capacity(16);
    body.push(0);
    put_varlong(&mut body, 0);
    put_varint(&mut body, span as i32);
    put_bytes(&mut body, Some(GAP_MARKER_KEY));
    put_bytes(&mut body, None);
    put_varint(&mut body, 0);
    let mut records = Vec::with_capacity(body.len() + 2);
    put_varint(&mut records, body.len() as i32);
    records.extend_from_slice(&body);
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + records.len());
    out.put_i64(first.0 as i64);
    out.put_i32((BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + records.len()) as i32);
    out.put_i32(leader_epoch.0 as i32);
    out.put_i8(MAGIC_V2);
    out.put_u32(0);
    out.put_i16(CONTROL_FLAG);
    out.put_i32(span as i32);
    out.put_i64(0);
    out.put_i64(0);
    out.put_i64(NO_PRODUCER_ID);
    out.put_i16(-1);
    out.put_i32(NO_SEQUENCE);
    out.put_i32(1);
    out.extend_from_slice(&records);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[CRC_FIELD..CRC_FIELD + 4].copy_from_slice(&crc.to_be_bytes());
    RecordBatch::parse(out.freeze()).expect("a gap marker is a valid control batch")
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a scan of concatenated batches stopped before the end of its buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanStop {
    /// Byte position of the first bad batch.
    pub position: usize,
    pub error: RecordError,
}

/// Splits a buffer of concatenated batches, validating each (length, magic, CRC, records).
/// Returns the valid prefix and, if the buffer did not end cleanly, where and why it stopped.
/// Recovery truncates at `position`; a consumer refuses the rest of the fetch.
pub fn scan_batches(buf: &Bytes) -> (Vec<RecordBatch>, Option<ScanStop>) {
    let mut batches = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        let rest = buf.slice(position..);
        let header = match parse_header(&rest) {
            Ok(header) => header,
            Err(error) => return (batches, Some(ScanStop { position, error })),
        };
        if header.total_bytes() > rest.len() {
            let error = RecordError::Truncated { what: "batch" };
            return (batches, Some(ScanStop { position, error }));
        }
        match RecordBatch::parse(rest.slice(..header.total_bytes())) {
            Ok(batch) => {
                position += batch.len_bytes();
                batches.push(batch);
            }
            Err(error) => return (batches, Some(ScanStop { position, error })),
        }
    }
    (batches, None)
}

fn parse_header(bytes: &[u8]) -> Result<BatchHeader, RecordError> {
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(RecordError::Truncated { what: "batch header" });
    }
    let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let i32_at = |at: usize| i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let i16_at = |at: usize| i16::from_be_bytes(bytes[at..at + 2].try_into().expect("2 bytes"));
    let magic = bytes[16] as i8;
    if magic != MAGIC_V2 {
        return Err(RecordError::BadMagic { magic });
    }
    let base_offset = i64_at(0);
    let batch_length = i32_at(8);
    let last_offset_delta = i32_at(23);
    let record_count = i32_at(57);
    if base_offset < 0 {
        return Err(RecordError::Malformed { what: "negative base offset" });
    }
    let min_length = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
    if batch_length < min_length {
        return Err(RecordError::Malformed { what: "batch length shorter than its header" });
    }
    if batch_length as usize + LOG_OVERHEAD_BYTES > BATCH_BYTES_MAX {
        let bytes = batch_length as usize + LOG_OVERHEAD_BYTES;
        return Err(RecordError::TooLarge { bytes, limit: BATCH_BYTES_MAX });
    }
    let attributes = i16_at(21);
    // A control batch may span more offsets than it has records (as a compacted batch may
    // in Kafka); a data batch here always has one record per offset.
    let spans_ok = match attributes & CONTROL_FLAG != 0 {
        true => last_offset_delta >= record_count - 1,
        false => last_offset_delta == record_count - 1,
    };
    if record_count <= 0 || !spans_ok {
        return Err(RecordError::Malformed { what: "record count and last offset delta disagree" });
    }
    if attributes & 0x7 != 0 {
        return Err(RecordError::Unsupported { what: "compressed batches" });
    }
    Ok(BatchHeader {
        base_offset: Offset(base_offset as u64),
        batch_length: batch_length as u32,
        partition_leader_epoch: i32_at(12),
        crc: u32::from_be_bytes(bytes[17..21].try_into().expect("4 bytes")),
        attributes,
        last_offset_delta: last_offset_delta as u32,
        base_timestamp: i64_at(27),
        max_timestamp: i64_at(35),
        producer_id: i64_at(43),
        producer_epoch: i16_at(51),
        base_sequence: i32_at(53),
        record_count: record_count as u32,
    })
}

fn verify_crc(bytes: &[u8], stored: u32) -> Result<(), RecordError> {
    let computed = crc32c::crc32c(&bytes[CRC_START..]);
    if computed != stored {
        return Err(RecordError::CrcMismatch { stored, computed });
    }
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, bytes.len() as i32);
            out.extend_from_slice(bytes);
        }
    }
}

/// A read position in a batch's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn varint(&mut self) -> Result<i32, RecordError> {
        let mut rest = &self.bytes[self.at..];
        let value = get_varint(&mut rest)?;
        self.at = self.bytes.len() - rest.len();
        Ok(value)
    }

    fn varlong(&mut self) -> Result<i64, RecordError> {
        let mut rest = &self.bytes[self.at..];
        let value = get_varlong(&mut rest)?;
        self.at = self.bytes.len() - rest.len();
        Ok(value)
    }

    /// A length-prefixed field as (position, length); None for a null (-1) field.
    fn field(&mut self, end: usize) -> Result<Option<(usize, usize)>, RecordError> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        if self.at > end || end - self.at < len {
            return Err(RecordError::Truncated { what: "record field" });
        }
        let at = self.at;
        self.at += len;
        Ok(Some((at, len)))
    }
}

/// A record's fixed fields.
struct RawRecord {
    offset: Offset,
    timestamp_ms: i64,
}

/// Where a record's variable fields sit in the batch (reused across records).
#[derive(Default)]
struct RecordFields {
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
    headers: Vec<((usize, usize), (usize, usize))>,
}

fn decode_record(
    cursor: &mut Cursor<'_>,
    header: &BatchHeader,
    fields: &mut RecordFields,
) -> Result<RawRecord, RecordError> {
    let len = cursor.varint()?;
    if len < 1 || len as usize > cursor.bytes.len() - cursor.at {
        return Err(RecordError::Truncated { what: "record" });
    }
    let end = cursor.at + len as usize;
    cursor.at += 1; // record attributes: unused in v2
    let timestamp_delta = cursor.varlong()?;
    let offset_delta = cursor.varint()?;
    if offset_delta < 0 || offset_delta as u32 > header.last_offset_delta {
        return Err(RecordError::Malformed { what: "offset delta outside the batch" });
    }
    fields.key = cursor.field(end)?;
    fields.value = cursor.field(end)?;
    let header_count = cursor.varint()?;
    if header_count < 0 {
        return Err(RecordError::Malformed { what: "negative header count" });
    }
    fields.headers.clear();
    for _ in 0..header_count {
        let name = cursor.field(end)?.ok_or(RecordError::Malformed { what: "null header key" })?;
        let value = cursor.field(end)?.unwrap_or((cursor.at, 0));
        fields.headers.push((name, value));
    }
    if cursor.at != end {
        return Err(RecordError::Malformed { what: "record length does not match its fields" });
    }
    Ok(RawRecord {
        offset: header.base_offset.plus(offset_delta as u64),
        timestamp_ms: header.base_timestamp.saturating_add(timestamp_delta),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(count: u32) -> RecordBatch {
        let mut builder = BatchBuilder::idempotent(7, 0, 40);
        for i in 0..count {
            let value = format!("value-{i}");
            builder.push(1_000 + i64::from(i), Some(b"key"), Some(value.as_bytes()), &[]);
        }
        builder.build()
    }

    #[test]
    fn stamping_position_keeps_crc_valid() {
        let batch = sample(3).with_position(Offset(100), Epoch(4));
        let reparsed = RecordBatch::parse(batch.as_bytes().clone()).expect("still valid");
        assert_eq!(reparsed.base_offset(), Offset(100));
        assert_eq!(reparsed.last_offset(), Offset(102));
        assert_eq!(reparsed.header().leader_epoch(), Some(Epoch(4)));
        assert_eq!(reparsed.header().last_sequence(), 42);
        let offsets: Vec<u64> = reparsed.records().unwrap().iter().map(|r| r.offset.0).collect();
        assert_eq!(offsets, vec![100, 101, 102]);
    }

    #[test]
    fn every_single_bit_flip_in_the_crc_region_is_detected() {
        let batch = sample(2);
        let bytes = batch.as_bytes();
        for byte in CRC_FIELD..bytes.len() {
            for bit in 0..8 {
                let mut corrupt = bytes.to_vec();
                corrupt[byte] ^= 1 << bit;
                assert!(RecordBatch::parse(Bytes::from(corrupt)).is_err(), "flip {byte}:{bit}");
            }
        }
    }

    #[test]
    fn scan_stops_at_a_torn_tail() {
        let a = sample(2).with_position(Offset(0), Epoch(0));
        let b = sample(3).with_position(Offset(2), Epoch(0));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(a.as_bytes());
        buf.extend_from_slice(&b.as_bytes()[..b.len_bytes() - 5]);
        let (batches, stop) = scan_batches(&buf.freeze());
        assert_eq!(batches, vec![a.clone()]);
        let stop = stop.expect("torn tail reported");
        assert_eq!(stop.position, a.len_bytes());
    }

    #[test]
    fn a_gap_marker_spans_its_offsets_with_one_control_record() {
        let marker = gap_marker(Offset(12), Offset(29), Epoch(3));
        let reparsed = RecordBatch::parse(marker.as_bytes().clone()).expect("valid");
        assert!(reparsed.header().is_control());
        assert_eq!((reparsed.base_offset(), reparsed.last_offset()), (Offset(12), Offset(29)));
        let records = reparsed.records().expect("decodes");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].offset, Offset(29));
        // A data batch may not claim more offsets than records.
        let mut forged = sample(1).as_bytes().to_vec();
        forged[23..27].copy_from_slice(&5i32.to_be_bytes());
        let crc = crc32c::crc32c(&forged[CRC_START..]);
        forged[CRC_FIELD..CRC_FIELD + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(RecordBatch::parse(Bytes::from(forged)).is_err());
    }

    #[test]
    fn a_non_utf8_header_key_is_refused_at_parse() {
        let mut builder = BatchBuilder::new();
        builder.push(0, None, Some(b"v"), &[("k".to_string(), Bytes::from_static(b"x"))]);
        let mut bytes = builder.build().as_bytes().to_vec();
        let at = bytes.iter().rposition(|b| *b == b'k').expect("header key present");
        bytes[at] = 0xff;
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[CRC_FIELD..CRC_FIELD + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(RecordBatch::parse(Bytes::from(bytes)).is_err());
    }

    #[test]
    fn zeroed_tail_is_not_a_batch() {
        let (batches, stop) = scan_batches(&Bytes::from(vec![0u8; 600]));
        assert!(batches.is_empty());
        assert_eq!(stop.map(|s| s.position), Some(0));
    }

    type ArbRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Vec<u8>)>);

    fn arb_record() -> impl Strategy<Value = ArbRecord> {
        (
            0i64..1_000_000,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            proptest::collection::vec(
                ("[a-z]{0,6}", proptest::collection::vec(any::<u8>(), 0..8)),
                0..3,
            ),
        )
    }

    proptest! {
        #[test]
        fn batch_round_trip(
            records in proptest::collection::vec(arb_record(), 1..20),
            base in 0u64..1 << 40,
            epoch in 0u32..1000,
        ) {
            let mut builder = BatchBuilder::new();
            for (ts, key, value, headers) in &records {
                let headers: Vec<(String, Bytes)> =
                    headers.iter().map(|(k, v)| (k.clone(), Bytes::from(v.clone()))).collect();
                builder.push(*ts, key.as_deref(), value.as_deref(), &headers);
            }
            let batch = builder.build().with_position(Offset(base), Epoch(epoch));
            let decoded = RecordBatch::parse(batch.as_bytes().clone()).unwrap().records().unwrap();
            prop_assert_eq!(decoded.len(), records.len());
            for (i, (record, (ts, key, value, headers))) in decoded.iter().zip(&records).enumerate() {
                prop_assert_eq!(record.offset, Offset(base + i as u64));
                prop_assert_eq!(record.timestamp_ms, *ts);
                prop_assert_eq!(record.key.as_deref(), key.as_deref());
                prop_assert_eq!(record.value.as_deref(), value.as_deref());
                prop_assert_eq!(record.headers.len(), headers.len());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = scan_batches(&Bytes::from(bytes));
        }

        #[test]
        fn mutated_batches_never_panic(pos in 0usize..200, byte in any::<u8>()) {
            let mut bytes = sample(3).as_bytes().to_vec();
            let at = pos % bytes.len();
            bytes[at] = byte;
            let _ = scan_batches(&Bytes::from(bytes));
        }
    }
}
