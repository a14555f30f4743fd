//! Fetch: read whole batches below the high watermark, parking a request that found no
//! data until data arrives or its max wait passes (Kafka's delayed fetch).

use super::{Broker, ConnId};
use crate::log::LogError;
use crate::protocol::*;
use crate::types::{Millis, Offset};
use bytes::Bytes;

#[derive(Debug)]
pub(super) struct ParkedFetch {
    pub conn: ConnId,
    pub correlation_id: u32,
    pub request: FetchRequest,
    pub deadline: Millis,
}

impl Broker {
    pub(super) fn fetch(
        &mut self,
        now: Millis,
        conn: ConnId,
        correlation_id: u32,
        request: FetchRequest,
    ) {
        let response = self.read_partitions(&request);
        let has_data =
            response.partitions.iter().any(|p| !p.records.is_empty() || p.error != ErrorCode::None);
        let max_wait_ms = u64::from(request.max_wait_ms).min(self.config.fetch_max_wait_ms);
        if has_data || max_wait_ms == 0 {
            self.respond(conn, correlation_id, Response::Fetch(response));
            return;
        }
        let deadline = now.plus_ms(max_wait_ms);
        self.parked.push(ParkedFetch { conn, correlation_id, request, deadline });
    }

    /// Answers parked fetches that now have data.
    pub(super) fn wake_fetches(&mut self, _now: Millis) {
        let parked = std::mem::take(&mut self.parked);
        for fetch in parked {
            let response = self.read_partitions(&fetch.request);
            if response
                .partitions
                .iter()
                .any(|p| !p.records.is_empty() || p.error != ErrorCode::None)
            {
                self.respond(fetch.conn, fetch.correlation_id, Response::Fetch(response));
            } else {
                self.parked.push(fetch);
            }
        }
    }

    pub(super) fn expire_fetches(&mut self, now: Millis) {
        let parked = std::mem::take(&mut self.parked);
        for fetch in parked {
            if fetch.deadline <= now {
                let response = self.read_partitions(&fetch.request);
                self.respond(fetch.conn, fetch.correlation_id, Response::Fetch(response));
            } else {
                self.parked.push(fetch);
            }
        }
    }

    /// Drops parked fetches of a closed connection.
    pub fn on_connection_closed(&mut self, conn: ConnId) {
        self.parked.retain(|f| f.conn != conn);
        self.produces.retain(|p| p.conn != conn);
    }

    fn read_partitions(&self, request: &FetchRequest) -> FetchResponse {
        let mut budget = request.max_bytes as usize;
        let mut partitions = Vec::with_capacity(request.partitions.len());
        for wanted in &request.partitions {
            let mut out = FetchPartitionResponse {
                tp: wanted.tp.clone(),
                error: ErrorCode::None,
                high_watermark: Offset::ZERO,
                log_start_offset: Offset::ZERO,
                records: Bytes::new(),
            };
            match self.partitions.get(&wanted.tp) {
                None => out.error = ErrorCode::UnknownTopicOrPartition,
                Some(p) if p.offline => out.error = ErrorCode::KafkaStorageError,
                Some(p) => {
                    out.high_watermark = p.high_watermark;
                    out.log_start_offset = p.log.log_start_offset();
                    if (wanted.fetch_offset >= p.high_watermark
                        && wanted.fetch_offset <= p.log.log_end_offset())
                        || budget == 0
                    {
                        // Caught up (or out of budget): nothing to send, not an error.
                    } else {
                        let max_bytes = budget.min(wanted.partition_max_bytes as usize).max(1);
                        match p.log.read(wanted.fetch_offset, max_bytes, p.high_watermark) {
                            Ok(data) => {
                                budget = budget.saturating_sub(data.records.len());
                                out.records = data.records;
                            }
                            Err(LogError::OffsetOutOfRange { .. }) => {
                                out.error = ErrorCode::OffsetOutOfRange
                            }
                            Err(_) => out.error = ErrorCode::KafkaStorageError,
                        }
                    }
                }
            }
            partitions.push(out);
        }
        FetchResponse { partitions }
    }
}
