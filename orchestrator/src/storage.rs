//! Internal storage: a local folder for task files (serde conversions, `logToFile` logs),
//! addressed by `kestra:///` URIs as in Kestra's `StorageInterface`.

use std::io;
use std::path::{Path, PathBuf};

const SCHEME: &str = "kestra://";

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(Storage { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The URI of a file under an execution's task-run folder, Kestra's layout:
    /// `kestra:///{namespace}/{flow}/executions/{execution}/tasks/{task}/{taskrun}/{name}`,
    /// the flow and task ids as [`slug`]s.
    pub fn task_uri(
        namespace: &str,
        flow_id: &str,
        execution_id: &str,
        task_id: &str,
        task_run_id: &str,
        name: &str,
    ) -> String {
        format!(
            "{SCHEME}/{}/{}/executions/{execution_id}/tasks/{}/{task_run_id}/{name}",
            namespace.replace('.', "/"),
            slug(flow_id),
            slug(task_id)
        )
    }

    /// [`Storage::task_uri`] of a task run's own folder.
    pub fn task_run_uri(tr: &crate::model::TaskRun, name: &str) -> String {
        Self::task_uri(
            &tr.namespace,
            &tr.flow_id,
            &tr.execution_id,
            &tr.task_id,
            &tr.id,
            name,
        )
    }

    /// The URI of a task run's folder: [`Storage::task_run_uri`] without a file name.
    pub fn task_run_folder(tr: &crate::model::TaskRun) -> String {
        let mut uri = Self::task_run_uri(tr, "");
        uri.pop();
        uri
    }

    /// The URI of a file given as an execution's input, Kestra's layout:
    /// `kestra:///{namespace}/{flow}/executions/{execution}/inputs/{input}/{file name}`.
    pub fn input_uri(
        namespace: &str,
        flow_id: &str,
        execution_id: &str,
        input: &str,
        file_name: &str,
    ) -> String {
        format!(
            "{SCHEME}/{}/{}/executions/{execution_id}/inputs/{input}/{file_name}",
            namespace.replace('.', "/"),
            slug(flow_id)
        )
    }

    /// The URI of an execution's folder, under which all its files are:
    /// `kestra:///{namespace}/{flow}/executions/{execution}` (Kestra's
    /// `StorageContext#getExecutionStorageURI`).
    pub fn execution_uri(namespace: &str, flow_id: &str, execution_id: &str) -> String {
        format!(
            "{SCHEME}/{}/{}/executions/{execution_id}",
            namespace.replace('.', "/"),
            slug(flow_id)
        )
    }

    /// Deletes a folder and everything under it (Kestra's `deleteByPrefix`); a folder that
    /// is not there is no error.
    pub fn delete_folder(&self, uri: &str) -> io::Result<()> {
        match std::fs::remove_dir_all(self.path(uri)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// Writes a whole file, creating its folders.
    pub fn write(&self, uri: &str, data: &[u8]) -> io::Result<()> {
        let p = self.path(uri)?;
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, data)
    }

    /// The local path of a `kestra:///` URI; rejects URIs that would escape the root.
    pub fn path(&self, uri: &str) -> io::Result<PathBuf> {
        let rel = uri.strip_prefix(SCHEME).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a storage URI: {uri}"),
            )
        })?;
        let rel = Path::new(rel.trim_start_matches('/'));
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("storage URI escapes the storage root: {uri}"),
            ));
        }
        Ok(self.root.join(rel))
    }

    /// Opens a file for appending, creating its folders.
    pub fn append(&self, uri: &str) -> io::Result<std::fs::File> {
        let p = self.path(uri)?;
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    }

    pub fn read_to_string(&self, uri: &str) -> io::Result<String> {
        std::fs::read_to_string(self.path(uri)?)
    }
}

/// An id as a path segment, as Kestra's `Slugify.of` writes flow and task ids in storage
/// paths: white space becomes `-`, accents are dropped (the text is decomposed, then all but
/// ASCII letters, digits, `_` and `-` removed), `_` becomes `-`, dashes do not repeat nor
/// start or end it, and it is lower case. `each_split` is `each-split`.
pub fn slug(id: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut slug = String::with_capacity(id.len());
    for c in id.nfd() {
        let c = if c.is_whitespace() || c == '_' {
            '-'
        } else {
            c
        };
        if !(c.is_ascii_alphanumeric() || c == '-') || (c == '-' && slug.ends_with('-')) {
            continue;
        }
        slug.push(c.to_ascii_lowercase());
    }
    slug.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_slugged_as_kestra_slugs_them() {
        assert_eq!(slug("each_split"), "each-split");
        assert_eq!(slug("for-each-item"), "for-each-item");
        assert_eq!(slug("My Flow__x"), "my-flow-x");
        assert_eq!(slug("_café_"), "cafe");
        assert_eq!(slug("a.b"), "ab");
        assert_eq!(
            Storage::task_uri("a.b", "F_1", "e", "t_x", "r", "o.txt"),
            "kestra:///a/b/f-1/executions/e/tasks/t-x/r/o.txt"
        );
    }

    #[test]
    fn uris_map_under_the_root_and_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path()).unwrap();
        let uri = Storage::task_uri("a.b", "f", "e", "t", "r", "log.txt");
        assert_eq!(uri, "kestra:///a/b/f/executions/e/tasks/t/r/log.txt");
        use std::io::Write;
        writeln!(s.append(&uri).unwrap(), "hello").unwrap();
        assert_eq!(s.read_to_string(&uri).unwrap(), "hello\n");
        assert!(s.path("kestra:///../etc/passwd").is_err());
        let folder = Storage::execution_uri("a.b", "f", "e");
        assert!(uri.starts_with(&format!("{folder}/")));
        s.delete_folder(&folder).unwrap();
        assert!(s.read_to_string(&uri).is_err());
        s.delete_folder(&folder).unwrap();
        assert!(s.path("file:///x").is_err());
    }
}
