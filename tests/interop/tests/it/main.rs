//! Interop tests against the JavaScript reference (see `tests/js`).
//!
//! They need the pinned npm packages: run them with `cargo xtask interop` (or `cargo xtask ci`),
//! which runs `npm ci` in `tests/js` first.

mod cli;
mod conflict;
mod disk;
mod extension;
mod keys;
mod proofs;
mod replicate;
