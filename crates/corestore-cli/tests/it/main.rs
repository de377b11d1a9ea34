//! Integration tests of the `corestore` binary: each test runs the built command in its own
//! temporary directories and checks its output, exit codes and the stores it leaves.

mod common;
mod demo;
mod local;
mod net;
