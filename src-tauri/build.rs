//! The app config lives at the repository root (the customer's layout).
//! tauri-build 2.6 reads `tauri.conf.json` from this crate's directory only,
//! so `src-tauri/{tauri.conf.json,ui,icons}` are symlinks to the root copies
//! (paths in the config resolve from the directory it is read in).

fn main() {
    println!("cargo:rerun-if-changed=../tauri.conf.json");
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::build();
}
