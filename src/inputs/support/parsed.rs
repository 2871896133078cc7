//! Reading a [`ProcFile`] and parsing it in one step, with errors that name the file.

use super::ProcFile;
use crate::core::InputError;

/// Reads `file` and parses its text; an unreadable file or a parse error names the file.
pub fn read_parsed<T>(
    file: &mut ProcFile,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, InputError> {
    let text = file.read()?;
    parse(text).map_err(|e| InputError::parse(file.path(), e))
}

/// Like [`read_parsed`], but a file that does not exist is `Ok(None)` (an optional kernel
/// feature such as PSI or IPv6).
pub fn read_parsed_optional<T>(
    file: &mut ProcFile,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, InputError> {
    let Some(text) = file.read_optional()? else {
        return Ok(None);
    };
    parse(text)
        .map(Some)
        .map_err(|e| InputError::parse(file.path(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_missing_optional_files_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "12\n").unwrap();
        let parse = |t: &str| t.trim().parse::<u32>().map_err(|e| e.to_string());
        let mut f = ProcFile::new(&p);
        assert_eq!(read_parsed(&mut f, parse).unwrap(), 12);
        std::fs::write(&p, "x\n").unwrap();
        let e = read_parsed(&mut f, parse).unwrap_err();
        assert!(e.0.starts_with(&p.display().to_string()), "{e}");
        let mut missing = ProcFile::new(dir.path().join("missing"));
        assert_eq!(read_parsed_optional(&mut missing, parse).unwrap(), None);
        assert!(read_parsed(&mut missing, parse).is_err());
    }
}
