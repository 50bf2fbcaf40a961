//! Gives the shared library its ELF SONAME, `libslabcache.so.<ABI>`, the name a program
//! linked against it records and looks for at run time. The ABI number changes only when
//! the C ABI breaks (adding fields at the end of a sized struct does not).

/// The C ABI's version, bumped when a change would break programs linked against the last.
const ABI: u32 = 0;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libslabcache.so.{ABI}");
    }
}
