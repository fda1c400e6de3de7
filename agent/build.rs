//! Rebuilds the agent when the page in `dist/` changes, so the embedded copy (release) or the
//! embedded file list (debug) always matches what Trunk last built.

fn main() {
    println!("cargo:rerun-if-changed=../dist");
}
