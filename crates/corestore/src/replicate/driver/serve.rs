//! The serving half of the driver: answering the remote's `request`s with proofs built by
//! `hypercore-lite` and its `want`s with `range`s.

use std::sync::Arc;

use corestore_proto::ProtocolError;
use corestore_proto::replicate::CoreId;
use corestore_proto::wire;
use hypercore_lite::tree::flat::NodeIndex;
use tracing::{debug, warn};

use super::Driver;
use crate::core::CoreEvent;
use crate::error::{Error, Result};
use crate::replicate::convert;

/// What became of a request [`Driver::answer`] answered under the core's lock.
enum Served {
    /// The proof went out; with a block, its index and length.
    Proof(Option<(u64, u64)>),
    /// It is answered with `noData`.
    NoData,
    /// Nothing was sent (cancelled meanwhile, or refused by the mux).
    Not,
}

/// Longest run of blocks announced in answer to one `want`.
const WANT_SCAN: u64 = 1 << 16;

impl Driver {
    /// Answers a remote request with a proof or `noData` (nothing if it was cancelled).
    ///
    /// As hypercore 10: a request on another fork, for a block we do not store or for a tree
    /// node beyond our length gets `noData`; a request on our fork that the proof builder
    /// refuses as invalid (an upgrade beyond our length, `nodes` out of bounds, an impossible
    /// seek) ends the stream with [`ProtocolError::InvalidRequest`]. A local failure (storage,
    /// corruption) is not the remote's fault: it gets `noData`.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] for an invalid request.
    pub(super) fn answer(&mut self, id: CoreId, request: &wire::Request) -> Result<()> {
        let Some(a) = self.attached.get(&id) else {
            return Ok(());
        };
        let core = Arc::clone(&a.core);
        if !self
            .conn
            .peer()
            .is_some_and(|p| p.is_remote_request(id, request.id))
        {
            return Ok(());
        }
        let lite = convert::request_from_wire(request);
        // The proof is built and sent under the core's lock: its block is read from storage
        // straight into the message (the corked batch), with no vector of its own between.
        let conn = &mut self.conn;
        let served = core.with(|c| {
            // hypercore answers a hash request beyond its length with `noData` (its tree
            // lookup fails with a plain error, not a `HypercoreError`).
            if let Some(h) = request.hash
                && request.fork == c.fork()
                && NodeIndex(h.index).right_span() >= NodeIndex::leaf(c.length())
            {
                return Ok(Served::NoData);
            }
            let Some((proof, value)) = c.proof_deferred(&lite)? else {
                return Ok(Served::NoData);
            };
            let Some(peer) = conn.peer() else {
                return Ok(Served::Not);
            };
            let data = convert::data_from_proof(request.id, proof);
            let Some(value) = value else {
                let sent = peer.send_data(id, data);
                return Ok(if sent == Ok(true) {
                    Served::Proof(None)
                } else {
                    Served::Not
                });
            };
            let (index, bytes) = (value.index(), value.len());
            let len = usize::try_from(bytes).unwrap_or(usize::MAX);
            match peer.send_data_with(id, data, len, |out| value.read_append(out)) {
                Ok(Ok(true)) => Ok(Served::Proof(Some((index, bytes)))),
                Ok(Ok(false)) | Err(_) => Ok(Served::Not),
                Ok(Err(e)) => Err(e.into()),
            }
        });
        let Some(peer) = self.conn.peer() else {
            return Ok(());
        };
        let mut sent = 0;
        match served {
            Ok(Served::Proof(upload)) => {
                if let Some((index, bytes)) = upload {
                    core.emit(CoreEvent::Upload { index, bytes });
                    sent = usize::try_from(bytes).unwrap_or(usize::MAX);
                }
            }
            Ok(Served::Not) => {}
            Ok(Served::NoData) => {
                let _ = peer.send_no_data(id, request.id);
            }
            Err(Error::Core(hypercore_lite::Error::InvalidRequest(reason))) => {
                debug!(
                    request = request.id,
                    reason, "invalid request: ending the stream"
                );
                return Err(ProtocolError::InvalidRequest(reason).into());
            }
            Err(e) => {
                warn!(error = %e, "cannot answer request");
                let _ = peer.send_no_data(id, request.id);
            }
        }
        self.batched(sent);
        Ok(())
    }

    /// Answers `want` with what we store of the range (`range` messages).
    pub(super) fn answer_want(&mut self, id: CoreId, want: &wire::Want) {
        let Some(a) = self.attached.get(&id) else {
            return;
        };
        let runs = a
            .core
            .with(|c| {
                let (length, contig) = (c.length(), c.contiguous_length());
                let mut runs = Vec::new();
                if contig > 0 {
                    runs.push((0, contig));
                }
                let end = want
                    .start
                    .saturating_add(want.length)
                    .min(length)
                    .min(contig.max(want.start).saturating_add(WANT_SCAN));
                let mut run: Option<(u64, u64)> = None;
                for i in contig.max(want.start)..end {
                    match (&mut run, c.has(i)) {
                        (Some(r), true) => r.1 += 1,
                        (None, true) => run = Some((i, 1)),
                        (Some(_), false) => runs.extend(run.take()),
                        (None, false) => {}
                    }
                }
                runs.extend(run);
                Ok(runs)
            })
            .unwrap_or_default();
        if let Some(p) = self.peer() {
            for (start, length) in runs {
                let _ = p.send_range(
                    id,
                    wire::Range {
                        drop: false,
                        start,
                        length,
                    },
                );
            }
        }
    }
}
