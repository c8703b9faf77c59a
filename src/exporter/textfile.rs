//! `--textfile DIR`: `sockscope.prom` for node_exporter's textfile collector, replaced
//! atomically (a temporary file in the same directory, then rename) so node_exporter never
//! reads half a file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file node_exporter reads.
pub const FILE_NAME: &str = "sockscope.prom";

/// Writes `text` to `DIR/sockscope.prom` by rename. The temporary name does not end in
/// `.prom`, so node_exporter ignores it while it is being written.
pub fn write_atomically(dir: &Path, text: &str) -> io::Result<PathBuf> {
    let target = dir.join(FILE_NAME);
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("sockscope-textfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "a 1\n").unwrap();
        let p = write_atomically(&dir, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(p).unwrap(), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
