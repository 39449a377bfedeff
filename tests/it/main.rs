//! Integration tests: drive the real `rime` binary on temporary repositories and trees.
//!
//! Run with `cargo test -p rime-cli --test it`. Tests that need root (device nodes, ownership,
//! mounts, running as another user) print why they skip when not root.

mod devices;
mod util;

mod agent;
mod agent_edges;
mod agent_mount;
mod cli;
mod crash;
mod crash_every_write;
mod damaged_index;
mod excludes;
mod faults;
mod freezer_fixture;
mod freezer_host_names;
mod freezer_legacy;
mod health;
mod incremental;
mod keys;
mod locks;
mod mongo;
mod multi;
mod mysql;
mod proptest_lifecycle;
mod proptest_trees;
mod roundtrip;
mod select;
mod sftp;
mod snapshots_live;
mod swift;
mod volume;
