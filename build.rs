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

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HALLPASS_NO_PACKED_RELOCS");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let opted_out = std::env::var_os("HALLPASS_NO_PACKED_RELOCS").is_some_and(|v| v != "0");
    if os == "linux" && env == "gnu" && !opted_out {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
