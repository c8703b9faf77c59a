//! Reading small /proc files in one `read`: `std::fs::read` first stats the file (procfs files
//! report size 0) and then grows its buffer over several reads, which is ten syscalls for a
//! limits file. On a 1,000-process scan that was most of the run time.

use std::io;

use crate::host::Host;

/// Reads `path` into `buf` with open + read (+ read until EOF or full) + close; returns the
/// bytes read. A seq_file fills as much of the buffer as it can in one call, so a file smaller
/// than `buf` costs one read.
pub fn read_small(host: &dyn Host, path: &str, buf: &mut [u8]) -> io::Result<usize> {
    host.read_small(path, buf)
}

/// A process's name from `ROOT/PID/comm`, without the newline; `None` when it is gone.
pub fn comm(host: &dyn Host, root: &str, pid: u32) -> io::Result<String> {
    let mut buf = [0u8; 64];
    let n = read_small(host, &format!("{root}/{pid}/comm"), &mut buf)?;
    let raw = &buf[..n];
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    Ok(String::from_utf8_lossy(raw).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_small_files_and_comm() {
        let mut buf = [0u8; 4096];
        let n = read_small(
            &crate::host::LiveHost,
            &format!("{}/self/limits", crate::host::PROC),
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            &buf[..n],
            std::fs::read(format!("{}/self/limits", crate::host::PROC))
                .unwrap()
                .as_slice()
        );
        let me = std::process::id();
        assert_eq!(
            comm(&crate::host::LiveHost, crate::host::PROC, me).unwrap(),
            std::fs::read_to_string(format!("{}/self/comm", crate::host::PROC))
                .unwrap()
                .trim_end()
        );
        assert!(comm(&crate::host::LiveHost, crate::host::PROC, u32::MAX - 1).is_err());
    }
}
