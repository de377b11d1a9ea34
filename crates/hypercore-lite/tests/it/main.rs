//! Integration tests of hypercore-lite, one binary with one module per concern.

mod common;
mod corruption;
mod faults;
mod model;
mod operations;
mod proofs;
mod spec;
