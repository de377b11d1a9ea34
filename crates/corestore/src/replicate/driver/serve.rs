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
        let proof = core.with(|c| {
            // hypercore answers a hash request beyond its length with `noData` (its tree
            // lookup fails with a plain error, not a `HypercoreError`).
            if let Some(h) = request.hash
                && request.fork == c.fork()
                && NodeIndex(h.index).right_span() >= NodeIndex::leaf(c.length())
            {
                return Ok(None);
            }
            Ok(c.proof(&lite)?)
        });
        let Some(peer) = self.conn.peer() else {
            return Ok(());
        };
        let mut sent = 0;
        match proof {
            Ok(Some(proof)) => {
                let upload = proof
                    .block
                    .as_ref()
                    .map(|b| (b.index, b.value.len() as u64));
                if let Ok(true) = peer.send_data(id, convert::data_from_proof(request.id, proof))
                    && let Some((index, bytes)) = upload
                {
                    core.emit(CoreEvent::Upload { index, bytes });
                    sent = usize::try_from(bytes).unwrap_or(usize::MAX);
                }
            }
            Ok(None) => {
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
