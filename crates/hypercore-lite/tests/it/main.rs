//! Integration tests of hypercore-lite, one binary with one module per concern.

mod apply_batch;
mod common;
mod corruption;
mod crash;
mod faults;
mod fixtures;
mod js_proofs;
mod json;
mod lazy;
mod model;
mod operations;
mod proofs;
mod spec;
mod trimmed;
