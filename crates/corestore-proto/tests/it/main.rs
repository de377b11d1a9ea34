//! Integration tests of the public API: recorded vectors and whole-stack scenarios.

mod robustness;
mod stack;
mod trace;
