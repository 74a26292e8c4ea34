//! Link options of the `hallpass` binary (nothing is generated).
//!
//! Packed relative relocations (`DT_RELR`, `-z pack-relative-relocs`): the binary is
//! position-independent, and its ~32,000 relative relocations were a 755 KB `.rela.dyn`
//! table that the dynamic linker reads whole on every start, so all of it stayed resident
//! (issue 12 point 5: idle memory, bench/README.md). Packed, the table is a few KB; the
//! relocations themselves, and so address-space randomisation, are unchanged.
//!
//! Needs GNU ld 2.38+ or lld 15+ to link (older linkers ignore the option with a warning)
//! and glibc 2.36+ to run (Debian 12, Ubuntu 22.10, Fedora 37 and later); a binary built with
//! it refuses to start on an older glibc with a loader error naming `GLIBC_ABI_DT_RELR`.
//! Set `HALLPASS_NO_PACKED_RELOCS=1` when building for an older system.
//!
//! Function order (`bench/link.order`, written by `bench/link-order.sh`): a release build
//! for x86_64 Linux lays the functions that a start and the hot requests run next to each
//! other, so a start maps a few MB of code instead of ~12 MB scattered over the whole
//! binary (bench/README.md). Only lld reads the file, the linker rustc uses by default on
//! that target; set `HALLPASS_NO_LINK_ORDER=1` to link without it (it is also left out
//! when a linker of your own is configured). Names the binary no longer has are skipped.
//! The file's header records what the names' hashes depend on (the compiler's version,
//! Cargo.lock and Cargo.toml); when this build's differ, the order is stale and the build
//! says so with a warning (run bench/link-order.sh on the new build).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HALLPASS_NO_PACKED_RELOCS");
    println!("cargo:rerun-if-env-changed=HALLPASS_NO_LINK_ORDER");
    println!("cargo:rerun-if-changed=bench/link.order");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let opted_out = |name: &str| std::env::var_os(name).is_some_and(|v| v != "0");
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && !opted_out("HALLPASS_NO_PACKED_RELOCS")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("bench/link.order");
    if var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !opted_out("HALLPASS_NO_LINK_ORDER")
        && order.is_file()
    {
        // `-Xlinker` passes the path whole (`-Wl,` would split it at any comma).
        println!("cargo:rustc-link-arg-bins=-Xlinker");
        println!(
            "cargo:rustc-link-arg-bins=--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        if let Some(stale) = stale_order(&order, &var("CARGO_MANIFEST_DIR"), &var("RUSTC")) {
            println!(
                "cargo:warning=bench/link.order is stale ({stale}): this build keeps more code \
                 resident after start-up; run bench/link-order.sh on it, then build again"
            );
        }
    }
}

/// What differs between the inputs the order's header records and this build's, if any.
/// Unknown (no header, no compiler to ask) is not reported: the order may still be right.
fn stale_order(order: &Path, manifest: &str, rustc: &str) -> Option<String> {
    let text = std::fs::read_to_string(order).ok()?;
    let recorded = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix("# inputs: "))?;
    let version = std::process::Command::new(rustc).arg("-V").output().ok()?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let file = |name: &str| {
        let bytes = std::fs::read(Path::new(manifest).join(name)).unwrap_or_default();
        format!("{name} {}", fnv1a(&bytes))
    };
    let current = [version, file("Cargo.lock"), file("Cargo.toml")];
    let differ: Vec<&str> = current
        .iter()
        .zip(recorded.split("; "))
        .filter(|(now, then)| now.as_str() != *then)
        .map(|(now, _)| now.split(' ').next().unwrap_or_default())
        .collect();
    (!differ.is_empty()).then(|| format!("written for another {}", differ.join(", ")))
}

/// FNV-1a, 64 bits (bench/link-order.sh computes the same).
fn fnv1a(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}
