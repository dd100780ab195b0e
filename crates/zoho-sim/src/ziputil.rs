//! Zip helpers for bulk results and uploads.

use std::io::{Cursor, Read, Write};

use bytes::Bytes;

/// A zip holding one file.
pub fn zip_one(name: &str, content: &[u8]) -> Bytes {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        // The fastest deflate: the simulator's own CPU is not Zoho's job
        // time, and a client must read any level.
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).compression_level(Some(1));
        z.start_file(name, opts).expect("zip entry");
        z.write_all(content).expect("zip write");
        z.finish().expect("zip finish");
    }
    Bytes::from(buf.into_inner())
}

/// The first `.csv` entry of a zip (name, content); `None` if `data` is not
/// a readable zip with a CSV inside.
pub fn first_csv(data: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(Cursor::new(data)).ok()?;
    let idx = (0..z.len()).find(|i| z.by_index(*i).map(|f| f.name().to_lowercase().ends_with(".csv")).unwrap_or(false))?;
    let mut f = z.by_index(idx).ok()?;
    let name = f.name().rsplit('/').next().unwrap_or("").to_string();
    let mut out = Vec::new();
    f.read_to_end(&mut out).ok()?;
    Some((name, out))
}
