//! Errno names, numbers and messages for the errors the doctor's table covers, taken from this
//! system's C library at run time, so `explain 111` and a pasted "Connection refused" match
//! what programs on this kernel and libc actually print.

/// The number of an errno name the table uses (`ECONNREFUSED` → 111 on Linux/x86-64), from
/// the `libc` crate's constants for this platform.
pub fn number(name: &str) -> Option<i32> {
    Some(match name {
        "ECONNREFUSED" => libc::ECONNREFUSED,
        "ETIMEDOUT" => libc::ETIMEDOUT,
        "ECONNRESET" => libc::ECONNRESET,
        "EPIPE" => libc::EPIPE,
        "EMFILE" => libc::EMFILE,
        "ENFILE" => libc::ENFILE,
        "EADDRINUSE" => libc::EADDRINUSE,
        "EADDRNOTAVAIL" => libc::EADDRNOTAVAIL,
        "EHOSTUNREACH" => libc::EHOSTUNREACH,
        "ENETUNREACH" => libc::ENETUNREACH,
        _ => return None,
    })
}

/// What `strerror(n)` says on this system ("Connection refused"), without the
/// " (os error N)" that Rust's formatting appends.
pub fn message(n: i32) -> String {
    let text = std::io::Error::from_raw_os_error(n).to_string();
    match text.strip_suffix(&format!(" (os error {n})")) {
        Some(m) => m.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_messages_come_from_libc() {
        assert_eq!(number("ECONNREFUSED"), Some(libc::ECONNREFUSED));
        assert_eq!(number("EWHATEVER"), None);
        assert_eq!(message(libc::ECONNREFUSED), "Connection refused");
        assert_eq!(message(libc::ENFILE), "Too many open files in system");
        // SAFETY: strerror returns a pointer to a static (or thread-local) string.
        let c = unsafe { std::ffi::CStr::from_ptr(libc::strerror(libc::EPIPE)) };
        assert_eq!(message(libc::EPIPE), c.to_string_lossy());
    }
}
