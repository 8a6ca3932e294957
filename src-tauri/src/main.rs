//! The `engram-desktop` binary: see the library (`lib.rs`).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    engram_desktop::run();
}
