//! Integration tests: drive the real `rime` binary on temporary repositories and trees.
//!
//! Run with `cargo test -p rime-cli --test it`. Tests that need root (device nodes, ownership,
//! mounts, running as another user) print why they skip when not root.

mod util;

mod cli;
mod excludes;
mod faults;
mod incremental;
mod keys;
mod proptest_trees;
mod roundtrip;
mod select;
mod health;
mod crash;
